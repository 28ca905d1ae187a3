"""Models of the webhooks app: LiveKit's inbound events, and outbound endpoints/deliveries."""

from webhooks.models.intake import LiveKitEvent
from webhooks.models.outbound import Delivery as Delivery
from webhooks.models.outbound import WebhookEndpoint as WebhookEndpoint

__all__ = ["LiveKitEvent"]
