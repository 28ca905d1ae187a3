"""Models of the webhooks app: LiveKit's inbound events, and outbound endpoints/deliveries."""

from webhooks.models.intake import LiveKitEvent

__all__ = ["LiveKitEvent"]
