# The LiveKit webhook intake (POST /v1/calls/webhook), owned by webhooks/intake.py.
from django.urls import path

from webhooks.intake import LiveKitWebhookView

urlpatterns = [
    path("v1/calls/webhook", LiveKitWebhookView.as_view(), name="livekit-webhook"),
]
