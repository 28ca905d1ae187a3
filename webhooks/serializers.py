"""Request and response shapes of `/v1/webhooks` (document 001, camelCase like the rest of it)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from webhooks.events import WEBHOOK_EVENT_TYPES
from webhooks.models import Delivery, WebhookEndpoint

MASKED_SECRET = "***"  # noqa: S105 - the mask shown instead of a secret

_FORMAT_HELP = (
    'Delivery format: "standard" (Standard Webhooks, the default) or "rtcstack" ({event, payload, deliveryId} '
    "signed in X-RTCstack-Signature: sha256=<hex HMAC-SHA256(secret, body)>)"
)
_EVENTS_HELP = 'Event filter; defaults to ["*"]. Allowed: ' + ", ".join(WEBHOOK_EVENT_TYPES)


class WebhookCreateInput(serializers.Serializer):
    url = serializers.CharField(help_text="Delivery endpoint (http or https)")
    events = serializers.ListField(child=serializers.CharField(), required=False, help_text=_EVENTS_HELP)
    secret = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text=(
            "HMAC signing secret (generated if omitted). For format standard: whsec_<base64 of 16-64 bytes>; "
            "for format rtcstack: any 8-200 characters"
        ),
    )
    format = serializers.ChoiceField(choices=WebhookEndpoint.Format.values, required=False, help_text=_FORMAT_HELP)


class WebhookUpdateInput(serializers.Serializer):
    url = serializers.CharField(required=False)
    events = serializers.ListField(child=serializers.CharField(), required=False, help_text=_EVENTS_HELP)
    enabled = serializers.BooleanField(required=False)
    format = serializers.ChoiceField(choices=WebhookEndpoint.Format.values, required=False, help_text=_FORMAT_HELP)


class RotateSecretInput(serializers.Serializer):
    secret = serializers.CharField(
        required=False, trim_whitespace=False, help_text="The new secret (generated if omitted)"
    )


class WebhookOutput(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    format = serializers.ChoiceField(choices=WebhookEndpoint.Format.values, help_text=_FORMAT_HELP)
    secret = serializers.SerializerMethodField(help_text='"***" except in the response that creates or rotates it')
    enabled = serializers.BooleanField()
    disabledReason = serializers.CharField(source="disabled_reason", allow_null=True)
    disabledAt = serializers.DateTimeField(source="disabled_at", allow_null=True)
    consecutiveFailures = serializers.IntegerField(source="consecutive_failures")
    previousSecretExpiresAt = serializers.SerializerMethodField(
        help_text="While set, deliveries also carry a signature made with the previous secret"
    )
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        plaintext: str | None = self.context.get("plaintext_secret")
        return plaintext if plaintext else MASKED_SECRET

    def get_previousSecretExpiresAt(self, endpoint: WebhookEndpoint) -> str | None:
        if endpoint.previous_secret_expires_at is None or not endpoint.previous_secret_encrypted:
            return None
        return serializers.DateTimeField().to_representation(endpoint.previous_secret_expires_at)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["disabledReason"] = data["disabledReason"] or None
        return data


class WebhookListOutput(serializers.Serializer):
    webhooks = WebhookOutput(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField()
    webhookId = serializers.CharField(source="endpoint_id")
    eventId = serializers.CharField(source="event_id")
    eventType = serializers.CharField(source="event_type")
    status = serializers.ChoiceField(choices=Delivery.Status.values)
    attempts = serializers.IntegerField(source="attempt_count")
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    lastResponseBody = serializers.CharField(source="last_response_body", help_text="truncated")
    durationMs = serializers.IntegerField(source="duration_ms", allow_null=True)
    nextAttemptAt = serializers.DateTimeField(source="next_attempt_at", allow_null=True)
    lastAttemptAt = serializers.DateTimeField(source="last_attempt_at", allow_null=True)
    deliveredAt = serializers.DateTimeField(source="delivered_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")


class DeliveryListOutput(serializers.Serializer):
    deliveries = DeliveryOutput(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class TestDeliveryOutput(serializers.Serializer):
    delivered = serializers.BooleanField()
    statusCode = serializers.IntegerField(allow_null=True, help_text="null when no HTTP answer came back")
    deliveryId = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
