"""The live-calls surface (document 003 and ours): `/v1/live/calls...`."""

from django.urls import path

from calls import live_views

urlpatterns = [
    path("v1/live/calls", live_views.LiveCallsView.as_view(), name="live-calls"),
    path("v1/live/calls/<str:live_call_id>", live_views.LiveCallDetailView.as_view(), name="live-call"),
    path("v1/live/calls/<str:live_call_id>/start", live_views.LiveCallStartView.as_view(), name="live-call-start"),
    path("v1/live/calls/<str:live_call_id>/end", live_views.LiveCallEndView.as_view(), name="live-call-end"),
    path("v1/live/calls/<str:live_call_id>/token", live_views.LiveCallTokenView.as_view(), name="live-call-token"),
]
