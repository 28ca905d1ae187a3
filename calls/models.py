"""Calls, their participants, and the room timeline.

A Call is one ring-and-talk session in a Room, carried by its own LiveKit room
(`scaiwave-<call_id>`). Its status moves only through `Call.transition_to`, which checks
`Call.TRANSITIONS`: the one place the state machine is written down (docs/calls.md draws it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone

from rooms.models import Room
from scaiwave.ids import new_id
from scaiwave.models import Tenant, TenantUser


def _call_id() -> str:
    return new_id("call-")


def _timeline_id() -> str:
    return new_id("tl_")


class InvalidCallTransition(Exception):
    """A status change the state machine does not allow (a bug or a lost race, never user input)."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a call cannot go from {current} to {target}")
        self.current = current
        self.target = target


class Call(models.Model):
    class Type(models.TextChoices):
        AUDIO = "audio"
        VIDEO = "video"

    class Status(models.TextChoices):
        RINGING = "ringing"
        ACTIVE = "active"
        ENDED = "ended"
        MISSED = "missed"
        REJECTED = "rejected"
        CANCELLED = "cancelled"
        FAILED = "failed"

    LIVE_STATUSES = (Status.RINGING, Status.ACTIVE)
    # The whole state machine. Terminal statuses have no way out.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.RINGING: frozenset({Status.ACTIVE, Status.MISSED, Status.REJECTED, Status.CANCELLED, Status.FAILED}),
        Status.ACTIVE: frozenset({Status.ENDED, Status.FAILED}),
        Status.ENDED: frozenset(),
        Status.MISSED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.FAILED: frozenset(),
    }

    id = models.CharField(primary_key=True, max_length=40, default=_call_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calls")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="calls")
    type = models.CharField(max_length=8, choices=Type.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RINGING)
    initiator = models.ForeignKey(TenantUser, on_delete=models.PROTECT, related_name="initiated_calls")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="when the first callee connected")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    ring_expires_at = models.DateTimeField(help_text="a call still ringing at this time is missed")
    livekit_room = models.CharField(max_length=256, unique=True)

    class Meta:
        constraints = [
            # At most one live call per room; call_initiate also checks under the room's row lock,
            # this is the backstop that makes a lost race an IntegrityError instead of two calls.
            models.UniqueConstraint(
                fields=["room"],
                condition=models.Q(status__in=["ringing", "active"]),
                name="uniq_live_call_per_room",
            ),
        ]
        indexes = [
            models.Index(fields=["room", "-created_at"], name="call_room_history_idx"),
            models.Index(fields=["ring_expires_at"], name="call_ringing_idx", condition=models.Q(status="ringing")),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.livekit_room:
            self.livekit_room = self.livekit_room_for(self.id)
        super().save(*args, **kwargs)

    @staticmethod
    def livekit_room_for(call_id: str) -> str:
        return f"scaiwave-{call_id}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    def can_transition_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, frozenset())

    def transition_to(self, target: str, *, reason: str = "", at: datetime | None = None) -> None:
        """Move to `target` (not saved) and stamp the times that go with it. Raises InvalidCallTransition."""
        if not self.can_transition_to(target):
            raise InvalidCallTransition(self.status, target)
        now = at or timezone.now()
        self.status = target
        if target == self.Status.ACTIVE:
            self.started_at = now
        else:
            self.ended_at = now
            # A failure's reason may carry a long upstream detail: end_reason keeps what fits its
            # column, failure_reason the whole text.
            self.end_reason = reason[: Call._meta.get_field("end_reason").max_length]
            if target == self.Status.FAILED:
                self.failure_reason = reason


class CallParticipant(models.Model):
    """A room member's part in one call.

    `invited_at` when the call starts (or when a late member asks to join); `token_issued_at`
    when ScaiWave handed out a LiveKit token; `joined_at`/`left_at` only from LiveKit's webhooks,
    which are the truth about who is connected.
    """

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="call_participations")
    invited_at = models.DateTimeField(default=timezone.now)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    leave_reason = models.CharField(max_length=64, blank=True, default="")
    rejected_at = models.DateTimeField(null=True, blank=True)
    audio_on = models.BooleanField(default=False)
    video_on = models.BooleanField(default=False)
    # Published tracks as LiveKit reported them: {track_sid: {"type": "audio"|"video", "muted": bool}}.
    tracks = models.JSONField(default=dict, blank=True)
    livekit_identity = models.CharField(max_length=256, blank=True, default="")
    livekit_sid = models.CharField(max_length=64, blank=True, default="")
    # LiveKit's createdAt of the last webhook applied to this row: older deliveries are ignored.
    last_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["call", "user"], name="uniq_call_participant")]
        ordering = ["invited_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.call_id}"

    @property
    def is_connected(self) -> bool:
        return self.joined_at is not None and self.left_at is None

    def refresh_media_flags(self) -> None:
        """audio_on/video_on: at least one unmuted track of that kind is published."""
        live = [t for t in self.tracks.values() if not t.get("muted")]
        self.audio_on = any(t.get("type") == "audio" for t in live)
        self.video_on = any(t.get("type") == "video" for t in live)


class TimelineEntry(models.Model):
    """Something posted to a room's timeline: a missed or rejected call, a transcript, ..."""

    class Kind(models.TextChoices):
        MISSED_CALL = "missed_call"
        REJECTED_CALL = "rejected_call"
        CALL_ENDED = "call_ended"
        TRANSCRIPT = "transcript"
        RECORDING = "recording"
        NOTE = "note"

    id = models.CharField(primary_key=True, max_length=40, default=_timeline_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="timeline_entries")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="timeline_entries")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["room", "-created_at"], name="timeline_room_idx")]
        ordering = ["-created_at"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.kind} in {self.room_id}"


class LiveCall(models.Model):
    """A scheduled live stream (document 003, "Loop Live"): one host publishes, the audience only subscribes.

    Built on the same core as every other call: each live call has its own Room (`live-<uuid>`, created with
    the live call; its LiveKit name is the `stream_call_id`), and going live creates a Call in that room
    (livekit_room = the Room's LiveKit name) and a Recording of that call. Status moves only through
    `transition_to`, which checks `TRANSITIONS` (docs/live-calls.md draws it).
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        ENDED = "ended"
        ERRORED = "errored"

    STREAM_CALL_TYPE = "livestream"
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.SCHEDULED: frozenset({Status.LIVE, Status.ERRORED}),
        Status.LIVE: frozenset({Status.ENDED, Status.ERRORED}),
        Status.ENDED: frozenset(),
        Status.ERRORED: frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="live_calls")
    host = models.ForeignKey(TenantUser, on_delete=models.PROTECT, related_name="hosted_live_calls")
    title = models.CharField(max_length=500)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="null: the host starts it when ready")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    error_reason = models.TextField(blank=True, default="")
    # The core it runs on: its own room (from creation), and once live the call and its recording.
    room = models.OneToOneField(Room, on_delete=models.PROTECT, related_name="live_call")
    call = models.OneToOneField(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="live_call")
    recording = models.ForeignKey(
        "recordings.Recording", on_delete=models.SET_NULL, null=True, blank=True, related_name="live_calls"
    )
    # The LiveKit room name (document 003's stream_call_id); kept when the Room row is closed.
    stream_call_id = models.CharField(max_length=256)
    # The composite file's media id once the recording is ready; `recording_url` is signed from it on each read
    # (a stored signed URL would expire).
    recording_media_id = models.CharField(max_length=40, blank=True, default="")
    recording_ready_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="livecall_tenant_idx"),
            models.Index(fields=["host", "-created_at"], name="livecall_host_idx"),
            models.Index(fields=["scheduled_at"], name="livecall_due_idx", condition=models.Q(status="scheduled")),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"

    def can_transition_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, frozenset())

    def transition_to(self, target: str, *, reason: str = "", at: datetime | None = None) -> None:
        """Move to `target` (not saved) and stamp the times that go with it. Raises InvalidLiveCallTransition."""
        if not self.can_transition_to(target):
            raise InvalidLiveCallTransition(self.status, target)
        now = at or timezone.now()
        self.status = target
        if target == self.Status.LIVE:
            self.started_at = now
        else:
            self.ended_at = now
        if target == self.Status.ERRORED:
            self.error_reason = reason

    @property
    def due_at(self) -> datetime:
        """When the call should go live: its scheduled time, or its creation for an unscheduled one."""
        return self.scheduled_at or self.created_at


class InvalidLiveCallTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a live call cannot go from {current} to {target}")
        self.current = current
        self.target = target
