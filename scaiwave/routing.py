from django.urls import path

from scaiwave.events.consumers import EventsConsumer
from transcription.routing import websocket_urlpatterns as transcription_websockets

websocket_urlpatterns = [
    path("v1/events", EventsConsumer.as_asgi()),
    *transcription_websockets,
]
