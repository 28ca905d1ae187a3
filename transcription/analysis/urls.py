from django.urls import path

from transcription.analysis import views

urlpatterns = [
    path("api/calls/analyze", views.CallAnalyzeView.as_view(), name="call-analyze"),
    path("api/calls/status", views.CallStatusView.as_view(), name="calls-status"),
    path("api/calls", views.CallListView.as_view(), name="calls"),
    path("api/calls/<str:call_id>", views.CallDetailView.as_view(), name="call-detail"),
    path("api/calls/<str:call_id>/transcript", views.CallTranscriptView.as_view(), name="call-transcript"),
    path("api/calls/<str:call_id>/analysis", views.CallAnalysisView.as_view(), name="call-analysis"),
    path("api/calls/<str:call_id>/speakers", views.CallSpeakersView.as_view(), name="call-speakers"),
    path("api/action-items", views.ActionItemListView.as_view(), name="action-items"),
    path("api/action-items/<str:item_id>", views.ActionItemDetailView.as_view(), name="action-item-detail"),
]
