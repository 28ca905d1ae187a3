"""Rooms and their members. A Room mirrors a LiveKit room; members and power levels decide
what each user may do on the calls surface."""

from __future__ import annotations

from django.db import models

from scaiwave.models import Tenant, TenantUser


class Room(models.Model):
    """A room as the rtcstack API names it (`roomId` = `name`, unique per tenant among open rooms)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=200)
    # The LiveKit room's name: the tenant's prefix (empty for the first tenant) + name, so two tenants may both
    # have a room called "standup" and a single tenant's clients see their roomId as LiveKit's room name.
    livekit_name = models.CharField(max_length=256)
    # The LiveKit room (the media session) a Room has now; empty between sessions.
    livekit_sid = models.CharField(max_length=64, blank=True, default="")
    # The last session LiveKit finished: its late webhooks are recognised as stale.
    livekit_finished_sid = models.CharField(max_length=64, blank=True, default="")
    # A room whose whole purpose is one LiveKit session (a scheduled live call's room) closes with it;
    # other rooms close with their session only while they never had a member (see room_session_end).
    closes_with_livekit_room = models.BooleanField(default=False)
    max_participants = models.PositiveIntegerField(default=0, help_text="0 = unlimited")
    empty_timeout = models.PositiveIntegerField(
        default=0, help_text="seconds LiveKit keeps the empty media session; 0 = LiveKit's default"
    )
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
        return f"{tenant.livekit_room_prefix}{name}"


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


class RoomParticipant(models.Model):
    """One LiveKit connection (a participant sid) as LiveKit reported it: the mirror of who is in a room.

    A sid is one connection; a rejoin gets a new sid and a new row. `left` is terminal for a sid, so a
    reordered `participant_joined` that arrives after its `participant_left` cannot bring a ghost back.
    """

    class State(models.TextChoices):
        JOINED = "joined"
        LEFT = "left"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    sid = models.CharField(max_length=64)
    identity = models.CharField(max_length=256)
    name = models.CharField(max_length=256, blank=True, default="")
    kind = models.CharField(max_length=32, blank=True, default="STANDARD")
    state = models.CharField(max_length=8, choices=State.choices, default=State.JOINED)
    # LiveKit's ParticipantInfo.joined_at_ms (or the event time): which connection of an identity is newest.
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    left_reason = models.CharField(max_length=64, blank=True, default="")
    # Published tracks by sid: {"TR_x": {"type", "source", "muted", "published"}}; an unpublished
    # track stays as a tombstone (published=False) so a late track_published is recognised as stale.
    tracks = models.JSONField(default=dict, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # When ScaiWave last wrote the row: reconciliation leaves alone rows written after its LiveKit snapshot.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "sid"], name="uniq_room_participant_sid")]
        indexes = [models.Index(fields=["room", "identity"]), models.Index(fields=["room", "state"])]
        ordering = ["room", "joined_at", "pk"]

    def __str__(self) -> str:
        return f"{self.identity} ({self.sid}) in {self.room}: {self.state}"


class RoomBan(models.Model):
    """A kicked identity may not refresh a token for this room name until `until`.

    Keyed by the room's name, not the Room row: a room closed and reopened under the same name keeps the ban.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="room_bans")
    room_name = models.CharField(max_length=200)
    identity = models.CharField(max_length=256)
    until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "room_name", "identity"], name="uniq_room_ban"),
        ]

    def __str__(self) -> str:
        return f"{self.identity} banned from {self.room_name} until {self.until:%Y-%m-%d %H:%M:%S}"
