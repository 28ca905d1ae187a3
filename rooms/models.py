"""Rooms and their members. A Room mirrors a LiveKit room; members and power levels decide
what each user may do on the calls surface."""

from __future__ import annotations

from django.db import models

from scaiwave.models import Tenant, TenantUser


class Room(models.Model):
    """A room as the rtcstack API names it (`roomId` = `name`, unique per tenant among open rooms)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=200)
    # Tenant-safe name used in LiveKit: two tenants may both have a room called "standup".
    livekit_name = models.CharField(max_length=256)
    livekit_sid = models.CharField(max_length=64, blank=True, default="")
    max_participants = models.PositiveIntegerField(default=0, help_text="0 = unlimited")
    empty_timeout = models.PositiveIntegerField(default=0, help_text="seconds; 0 = LiveKit's default")
    metadata = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], condition=models.Q(closed_at__isnull=True), name="uniq_open_room_name"
            ),
            models.UniqueConstraint(
                fields=["livekit_name"], condition=models.Q(closed_at__isnull=True), name="uniq_open_livekit_room"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "name"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @staticmethod
    def livekit_name_for(tenant: Tenant, name: str) -> str:
        return f"{tenant.pk}--{name}"


class RoomMember(models.Model):
    """A user's membership of a room. Power 50+ may end others' calls and record."""

    ADMIN_POWER = 50

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="memberships")
    power_level = models.PositiveSmallIntegerField(default=0)
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="uniq_room_member"),
            models.CheckConstraint(condition=models.Q(power_level__lte=100), name="power_level_0_100"),
        ]
        ordering = ["room", "-power_level", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} ({self.power_level})"

    @property
    def is_admin(self) -> bool:
        return self.power_level >= self.ADMIN_POWER
