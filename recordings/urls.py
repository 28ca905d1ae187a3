"""Recording endpoints: the calls surface (000), the rooms surface (001), and ours."""

from django.urls import path

from recordings import views

urlpatterns = [
    path("v1/calls/<str:call_id>/recording/start", views.CallRecordingStartView.as_view(), name="call-recording-start"),
    path("v1/calls/<str:call_id>/recording/stop", views.CallRecordingStopView.as_view(), name="call-recording-stop"),
    path("v1/calls/<str:call_id>/recordings", views.CallRecordingsView.as_view(), name="call-recordings"),
    path("v1/rooms/<str:room_id>/recording/start", views.RoomRecordingStartView.as_view(), name="room-recording-start"),
    path("v1/rooms/<str:room_id>/recording/stop", views.RoomRecordingStopView.as_view(), name="room-recording-stop"),
    path("v1/rooms/<str:room_id>/recording", views.RoomRecordingStatusView.as_view(), name="room-recording"),
    path("v1/recordings/<str:recording_id>", views.RecordingDetailView.as_view(), name="recording-detail"),
    path("v1/recordings/<str:recording_id>/media", views.RecordingMediaView.as_view(), name="recording-media"),
    path("v1/media/<str:media_id>", views.MediaDownloadView.as_view(), name="media-download"),
]
