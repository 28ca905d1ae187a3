from django.urls import path

from transcription.live import views

urlpatterns = [
    path("v1/rooms/<str:room_id>/transcription/start", views.LiveStartView.as_view(), name="room-transcription-start"),
    path("v1/rooms/<str:room_id>/transcription/stop", views.LiveStopView.as_view(), name="room-transcription-stop"),
    path("v1/rooms/<str:room_id>/transcription", views.LiveTranscriptView.as_view(), name="room-transcription"),
    path(
        "v1/rooms/<str:room_id>/transcription/speakers",
        views.LiveSpeakersView.as_view(),
        name="room-transcription-speakers",
    ),
]
