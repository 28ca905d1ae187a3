"""Outbound webhooks: the endpoints a tenant registered, and one Delivery per (event, endpoint)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.db import models
from django.utils import timezone

from scaiwave.crypto import decrypt_secret
from scaiwave.ids import new_id
from scaiwave.models import Tenant


@lru_cache(maxsize=512)
def _decrypted(ciphertext: str) -> str:
    # Every delivery signs with the endpoint's secret: decrypt each ciphertext once per process.
    return decrypt_secret(ciphertext)


def _endpoint_id() -> str:
    return new_id("wh_")


def _delivery_id() -> str:
    return new_id("dlv_")


def _default_events() -> list[str]:
    return ["*"]


class WebhookEndpoint(models.Model):
    """A URL that receives signed event deliveries, in Standard Webhooks form or rtcstack's own.

    The signing secret is encrypted at rest (it must be recoverable to sign). During a
    rotation's grace period the previous secret signs too, so receivers can switch over.
    """

    class Format(models.TextChoices):
        STANDARD = "standard", "Standard Webhooks (webhook-id/-timestamp/-signature headers)"
        RTCSTACK = "rtcstack", "rtcstack ({event, payload, deliveryId}, X-RTCstack-Signature)"

    id = models.CharField(primary_key=True, max_length=40, default=_endpoint_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.STANDARD)
    events = models.JSONField(default=_default_events, help_text='event names, or ["*"] for every event')
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Failed attempts in a row, and when the streak began: auto-disable needs both N and a day.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    # While a failure streak lasts: when the endpoint's next (single) attempt may go. Its other deliveries
    # wait, so a dead endpoint costs one request per backoff period, not one per delivery and retry.
    retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at", "-id"], name="webhook_tenant_created_idx")]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return f"{self.id} {self.url}"

    @property
    def secret(self) -> str:
        return _decrypted(self.secret_encrypted)

    def signing_secrets(self, *, now: datetime | None = None) -> list[str]:
        """The current secret, then the previous one while its grace period lasts."""
        now = now or timezone.now()
        secrets = [self.secret]
        if (
            self.previous_secret_encrypted
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > now
        ):
            secrets.append(_decrypted(self.previous_secret_encrypted))
        return secrets


class Delivery(models.Model):
    """One event for one endpoint. The payload is fixed when the row is created.

    `pending` rows are sent when `next_attempt_at` has passed. A worker claims an attempt by a
    conditional UPDATE that sets `locked_until` (a lease) and a fresh `claim_token`; only the
    holder of that token may record the outcome, so two workers never both send one attempt,
    and a worker that died leaves a lease that simply runs out.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending (waiting for its next attempt)"
        DELIVERED = "delivered"
        FAILED = "failed", "failed (final answer from the receiver, not retried)"
        DEAD = "dead", "dead (retries exhausted or endpoint disabled)"

    id = models.CharField(primary_key=True, max_length=40, default=_delivery_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64, help_text="the outbox event's id; also the webhook-id header")
    event_type = models.CharField(max_length=100)
    payload = models.BinaryField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # When a task for the next attempt was (or is expected to be) taken from the broker; the sweep
    # re-queues a due row whose task did not run within WEBHOOK_REQUEUE_AFTER of this.
    queued_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_response_body = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="uniq_delivery_per_event_endpoint"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_log_idx"),
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=models.Q(status="pending")),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.id} {self.event_type} -> {self.endpoint_id}"
