# WebSocket routes owned by the transcription app (the live audio ingest).
from django.urls import path

from transcription.live.consumers import AudioIngestConsumer

websocket_urlpatterns: list = [
    path("v1/ingest/audio", AudioIngestConsumer.as_asgi()),
]
