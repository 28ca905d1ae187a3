"""Recordings and the files they produce.

A `Recording` is one request to record a room or a call. LiveKit does the work through one
or more egresses (`RecordingEgress`): the room composite, plus one audio track egress per
speaker when a transcript was asked for. Every stored file, whatever produced it, is a
`MediaEntry`.

The recording's status moves only through `Recording.transition_to`, which checks
`Recording.TRANSITIONS`: the one place the lifecycle is written down (docs/recordings.md
draws it).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils import timezone

from rooms.models import Room
from scaiwave.ids import new_id
from scaiwave.models import Tenant, TenantUser


def _recording_id() -> str:
    return new_id("rec_")


def _media_entry_id() -> str:
    return new_id("me_")


class InvalidRecordingTransition(Exception):
    """A status change the lifecycle does not allow."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a recording cannot go from {current} to {target}")
        self.current = current
        self.target = target


class Recording(models.Model):
    class Kind(models.TextChoices):
        ROOM_COMPOSITE = "room_composite"
        TRACK_AUDIO = "track_audio"

    class Status(models.TextChoices):
        STARTING = "starting"
        RECORDING = "recording"
        STOPPING = "stopping"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"
        ABORTED = "aborted"
        LIMIT_REACHED = "limit_reached"

    # Statuses in which LiveKit is (about to be) writing: at most one per room or call.
    ACTIVE_STATUSES = (Status.STARTING, Status.RECORDING)
    # Statuses in which an egress may still change: the reconciler looks at these.
    PENDING_STATUSES = (Status.STARTING, Status.RECORDING, Status.STOPPING, Status.PROCESSING)
    FAILURE_STATUSES = (Status.FAILED, Status.ABORTED, Status.LIMIT_REACHED)
    _FAILURES = frozenset({Status.FAILED, Status.ABORTED, Status.LIMIT_REACHED})
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.STARTING: frozenset({Status.RECORDING, Status.STOPPING, Status.PROCESSING}) | _FAILURES,
        Status.RECORDING: frozenset({Status.STOPPING, Status.PROCESSING}) | _FAILURES,
        Status.STOPPING: frozenset({Status.PROCESSING}) | _FAILURES,
        Status.PROCESSING: frozenset({Status.READY, Status.FAILED}),
        Status.READY: frozenset(),
        Status.FAILED: frozenset(),
        Status.ABORTED: frozenset(),
        Status.LIMIT_REACHED: frozenset(),
    }

    id = models.CharField(primary_key=True, max_length=40, default=_recording_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="recordings")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="recordings")
    call = models.ForeignKey("calls.Call", on_delete=models.SET_NULL, null=True, blank=True, related_name="recordings")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ROOM_COMPOSITE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTING)
    # LiveKit's error text (or ours, e.g. "the file is empty") for failed/aborted/limit_reached.
    failure_reason = models.TextField(blank=True, default="")
    audio = models.BooleanField(default=True)
    video = models.BooleanField(default=True)
    transcript = models.BooleanField(default=False)
    # One audio-only track egress per speaker beside the composite, so a later transcription names each voice
    # (always with `transcript`; document 001's room recordings too, whose transcribe maps track sids to names).
    speaker_tracks = models.BooleanField(default=False)
    # The LiveKit room recorded: the room's livekit_name, or the call's `scaiwave-<call_id>`.
    livekit_room = models.CharField(max_length=256)
    # Where the composite file goes (the egress filepath): recordings/<call_id|room>/<timestamp>.mp4
    storage_key = models.CharField(max_length=512)
    requested_by = models.ForeignKey(
        TenantUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="recordings_requested"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="when LiveKit began writing")
    stopped_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="ready or failed")

    class Meta:
        constraints = [
            # The backstop for recording_start's room lock: one active recording per room, and per call.
            models.UniqueConstraint(
                fields=["room"],
                condition=models.Q(status__in=["starting", "recording"], call__isnull=True),
                name="uniq_active_room_recording",
            ),
            models.UniqueConstraint(
                fields=["call"],
                condition=models.Q(status__in=["starting", "recording"], call__isnull=False),
                name="uniq_active_call_recording",
            ),
        ]
        indexes = [
            models.Index(fields=["room", "-created_at"], name="recording_room_idx"),
            models.Index(
                fields=["status"],
                name="recording_pending_idx",
                condition=models.Q(status__in=["starting", "recording", "stopping", "processing"]),
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return not self.TRANSITIONS.get(self.status)

    def can_transition_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, frozenset())

    def transition_to(self, target: str, *, reason: str = "", at: datetime | None = None) -> None:
        """Move to `target` (not saved) and stamp the times that go with it. Raises InvalidRecordingTransition."""
        if not self.can_transition_to(target):
            raise InvalidRecordingTransition(self.status, target)
        now = at or timezone.now()
        self.status = target
        if target == self.Status.RECORDING and self.started_at is None:
            self.started_at = now
        if target in (self.Status.STOPPING, self.Status.PROCESSING, *self.FAILURE_STATUSES) and not self.stopped_at:
            self.stopped_at = now
        if target in (self.Status.READY, *self.FAILURE_STATUSES):
            self.finished_at = now
        if target in self.FAILURE_STATUSES:
            self.failure_reason = reason or self.failure_reason


class RecordingEgress(models.Model):
    """One LiveKit egress working for a recording, mirrored from LiveKit's EgressInfo."""

    class Kind(models.TextChoices):
        ROOM_COMPOSITE = "room_composite"
        TRACK_AUDIO = "track_audio"

    class Status(models.TextChoices):
        # LiveKit's EgressStatus names, without the EGRESS_ prefix.
        STARTING = "starting"
        ACTIVE = "active"
        ENDING = "ending"
        COMPLETE = "complete"
        FAILED = "failed"
        ABORTED = "aborted"
        LIMIT_REACHED = "limit_reached"

    RUNNING_STATUSES = (Status.STARTING, Status.ACTIVE, Status.ENDING)

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="egresses")
    egress_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    track_sid = models.CharField(max_length=64, blank=True, default="")
    participant_identity = models.CharField(max_length=256, blank=True, default="")
    # The display `name` of the participant's token (LiveKit's ParticipantInfo.name) when its track egress started.
    participant_name = models.CharField(max_length=256, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTING)
    error = models.TextField(blank=True, default="")
    # The object key LiveKit reported (FileInfo.filename) and what it said about the file.
    file_key = models.CharField(max_length=512, blank=True, default="")
    file_size = models.BigIntegerField(null=True, blank=True)
    file_location = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, help_text="last change we saw (webhook or reconcile)")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "recording egress"
        verbose_name_plural = "recording egresses"

    def __str__(self) -> str:
        return f"{self.egress_id} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status in self.RUNNING_STATUSES


class MediaEntry(models.Model):
    """A stored file: a recording, an upload for analysis, a transcript export.

    The object lives in `default_storage` under `key`. Delete through `media_entry_delete`
    (object first, then the row), never with a bare `.delete()`.
    """

    class Source(models.TextChoices):
        EGRESS = "egress"
        UPLOAD = "upload"
        TRANSCRIPT_EXPORT = "transcript_export"

    id = models.CharField(primary_key=True, max_length=40, default=_media_entry_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="media_entries")
    key = models.CharField(max_length=512, unique=True)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    duration_seconds = models.FloatField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=20, choices=Source.choices)
    recording = models.ForeignKey(
        Recording, on_delete=models.CASCADE, null=True, blank=True, related_name="media_entries"
    )
    egress = models.OneToOneField(
        RecordingEgress, on_delete=models.SET_NULL, null=True, blank=True, related_name="media_entry"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the sweeper when the object is gone from storage: the row is kept, flagged.
    missing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "media entry"
        verbose_name_plural = "media entries"

    def __str__(self) -> str:
        return self.key
