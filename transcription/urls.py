from django.urls import URLPattern, URLResolver, include, path

from transcription import views

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "v1/recordings/<str:recording_id>/transcribe",
        views.RecordingTranscribeView.as_view(),
        name="recording-transcribe",
    ),
    path("v1/transcriptions", views.TranscriptionListView.as_view(), name="transcriptions"),
    path(
        "v1/transcriptions/<str:transcription_id>",
        views.TranscriptionDetailView.as_view(),
        name="transcription-detail",
    ),
]
urlpatterns.append(path("", include("transcription.live.urls")))  # live: /v1/rooms/{roomId}/transcription...
urlpatterns.append(path("", include("transcription.analysis.urls")))  # uploaded calls (document 002)
