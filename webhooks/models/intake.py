from __future__ import annotations

from django.db import models


class LiveKitEvent(models.Model):
    """Every webhook LiveKit sent us, stored before it is applied (LiveKit's `id` is unique)."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        STALE = "stale", "ignored as older than what we know"
        FAILED = "failed"

    event_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64, db_index=True)
    room_name = models.CharField(max_length=256, blank=True, default="", db_index=True)
    participant_identity = models.CharField(max_length=256, blank=True, default="")
    egress_id = models.CharField(max_length=64, blank=True, default="")
    ingress_id = models.CharField(max_length=64, blank=True, default="")
    # LiveKit's createdAt (unix seconds): how out-of-order deliveries are put back in order.
    created_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    applied_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duplicates = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "LiveKit event"

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"
