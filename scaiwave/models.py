"""Tenancy, users, the event outbox and idempotency records."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from scaiwave.ids import new_id


def _tenant_id() -> str:
    return new_id("tn_", 16)


class Tenant(models.Model):
    """A host application. Its API secret authenticates the server and signs its users' tokens."""

    id = models.CharField(primary_key=True, max_length=40, default=_tenant_id, editable=False)
    name = models.CharField(max_length=200, unique=True)
    api_key_id = models.CharField(max_length=64, unique=True)
    api_secret_digest = models.CharField(max_length=64, unique=True)
    api_secret_encrypted = models.TextField()
    recordings_enabled = models.BooleanField(default=True)
    transcription_enabled = models.BooleanField(default=True)
    max_participants_per_call = models.PositiveIntegerField(default=settings.DEFAULT_MAX_PARTICIPANTS)
    ring_timeout_seconds = models.PositiveIntegerField(default=settings.DEFAULT_RING_TIMEOUT)
    retention_days = models.PositiveIntegerField(
        default=settings.DEFAULT_RETENTION_DAYS, help_text="0 keeps everything"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Put before a room's name to make its LiveKit room name. Empty for one tenant (the first, so always the
    # single-tenant default): its LiveKit rooms carry the roomId itself. Others sharing the LiveKit project
    # get `<id>--`. Set once at creation (scaiwave.services.tenant_create), never changed: rooms keep their names.
    livekit_room_prefix = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["livekit_room_prefix"],
                condition=models.Q(livekit_room_prefix=""),
                name="one_tenant_without_livekit_room_prefix",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_secret(self) -> str:
        from scaiwave.crypto import decrypt_secret

        return decrypt_secret(self.api_secret_encrypted)


class TenantUser(models.Model):
    """A user of the host application, known by the id the host app gives it (`sub`)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="users")
    external_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "external_id"], name="uniq_user_per_tenant")]
        ordering = ["tenant", "external_id"]
        verbose_name = "user"

    def __str__(self) -> str:
        return self.display_name or self.external_id


def _event_id() -> str:
    return new_id("evt_")


class Event(models.Model):
    """The transactional outbox: one row per domain change, written with the change itself."""

    seq = models.BigAutoField(primary_key=True)
    id = models.CharField(max_length=40, unique=True, default=_event_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=100, db_index=True)
    data = models.JSONField(default=dict)
    # Who receives it on the WebSocket: these users, and everyone subscribed to this room.
    user_ids = models.JSONField(default=list, blank=True)
    room_key = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=0)
    last_dispatch_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["seq"], name="event_undispatched_idx", condition=models.Q(dispatched_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    def as_frame(self) -> dict[str, object]:
        """The JSON frame WebSocket subscribers and webhook payloads carry."""
        return {"type": self.type, "data": self.data, "id": self.id, "ts": self.created_at.isoformat()}


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for 24 h."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    scope = models.CharField(max_length=300, help_text="the principal and endpoint the key belongs to")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "scope", "key"], name="uniq_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
