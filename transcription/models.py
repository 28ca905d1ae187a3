"""Transcriptions and their segments.

A `Transcription` is one job (post-call now; live sessions reuse the model with mode "live"). Its status moves
queued -> processing -> completed | failed; a failed or completed job may be queued again (re-run). Segments are
written in one transaction when the job completes, so a reader never sees half a transcript.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from scaiwave.ids import new_id
from scaiwave.models import Tenant, TenantUser


def _transcription_id() -> str:
    return new_id("tr_")


class Transcription(models.Model):
    class Mode(models.TextChoices):
        POST_CALL = "post_call"
        LIVE = "live"

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"
        # Live sessions (document 001): active while audio streams in, stopped afterwards.
        ACTIVE = "active"
        STOPPED = "stopped"

    class Health(models.TextChoices):
        """Whether a live session keeps up with its speakers (never silently behind)."""

        OK = "ok"
        DEGRADED = "degraded", "degraded: audio is being dropped or delayed"

    id = models.CharField(primary_key=True, max_length=40, default=_transcription_id, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="transcriptions")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.POST_CALL)
    # The transcript outlives a deleted recording or file: it is its own resource with its own DELETE.
    recording = models.ForeignKey(
        "recordings.Recording", on_delete=models.SET_NULL, null=True, blank=True, related_name="transcriptions"
    )
    media_entry = models.ForeignKey(
        "recordings.MediaEntry", on_delete=models.SET_NULL, null=True, blank=True, related_name="transcriptions"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # As asked (BCP-47, e.g. "en-US"); detected_language is what the recognizer heard (Whisper code).
    language = models.CharField(max_length=35, default="en-US")
    detected_language = models.CharField(max_length=16, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="", help_text="STT model that produced it")
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent of the audio done")
    duration = models.FloatField(null=True, blank=True, help_text="seconds of audio")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # {"<track sid or participant identity>": "Alice"} from the request; applied to segment speaker names.
    speaker_map = models.JSONField(default=dict, blank=True)
    # Live sessions: the room transcribed, the options asked (partialResults, punctuation, profanityFilter),
    # and how well the recognizer keeps up.
    room = models.ForeignKey(
        "rooms.Room", on_delete=models.SET_NULL, null=True, blank=True, related_name="transcriptions"
    )
    options = models.JSONField(default=dict, blank=True)
    health = models.CharField(max_length=12, choices=Health.choices, blank=True, default="")
    health_detail = models.TextField(blank=True, default="")
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="transcription_tenant_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="transcription_progress_max_100"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)

    @property
    def error_or_none(self) -> str | None:
        return self.error or None


class TranscriptSegment(models.Model):
    transcription = models.ForeignKey(Transcription, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    start = models.FloatField(help_text="seconds from the start of the recording")
    end = models.FloatField()
    text = models.TextField()
    # Stable label ("Speaker 1", a participant identity) and the display name shown to people.
    speaker_label = models.CharField(max_length=256, blank=True, default="")
    speaker_name = models.CharField(max_length=256, blank=True, default="")
    words = models.JSONField(default=list, blank=True, help_text='[{"start", "end", "text", "probability"}]')
    confidence = models.FloatField(null=True, blank=True)
    # Live sessions: the LiveKit track the audio came from, and when the segment was stored.
    track_sid = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["transcription", "index"]
        constraints = [
            models.UniqueConstraint(fields=["transcription", "index"], name="uniq_transcript_segment_index"),
        ]

    def __str__(self) -> str:
        return f"{self.transcription_id}#{self.index}"


# --- Uploaded-call analysis (document 002, the Scryon surface) -------------------------------------


class UploadedCall(models.Model):
    """A recording a user uploaded for analysis (`POST /api/calls/analyze`), with what we learned from it.

    Status moves QUEUED -> TRANSCRIBING -> COMPLETED | FAILED (the four values document 002 lists); a TRANSCRIBING
    call whose worker died goes back to QUEUED (the stuck-call sweep) until ANALYSIS_MAX_ATTEMPTS is spent.
    `speakers` is the resolved speaker map: [{"speakerId", "name", "role", "channel", "confidence", "source"}].
    """

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        TRANSCRIBING = "TRANSCRIBING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    class Direction(models.TextChoices):
        INCOMING = "INCOMING"
        OUTGOING = "OUTGOING"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.TRANSCRIBING, Status.FAILED}),
        # TRANSCRIBING -> TRANSCRIBING: a redelivered task takes back a call whose worker died.
        Status.TRANSCRIBING: frozenset({Status.TRANSCRIBING, Status.QUEUED, Status.COMPLETED, Status.FAILED}),
        Status.COMPLETED: frozenset(),
        Status.FAILED: frozenset(),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="uploaded_calls")
    owner = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="uploaded_calls")
    title = models.CharField(max_length=500, blank=True, default="")
    contact_name = models.CharField(max_length=200, blank=True, default="")
    contact_id = models.CharField(max_length=200, blank=True, default="")
    phone_number = models.CharField(max_length=64, blank=True, default="")
    organization = models.CharField(max_length=200, blank=True, default="")
    direction = models.CharField(max_length=8, choices=Direction.choices, blank=True, default="")
    recorded_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True, help_text="as sent, else as measured")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    error_reason = models.TextField(blank=True, default="")
    media_entry = models.ForeignKey(
        "recordings.MediaEntry", on_delete=models.SET_NULL, null=True, blank=True, related_name="uploaded_calls"
    )
    transcription = models.ForeignKey(
        Transcription, on_delete=models.SET_NULL, null=True, blank=True, related_name="uploaded_calls"
    )
    analysis = models.JSONField(null=True, blank=True, help_text="summary, keyTopics, talkTime, questions")
    speakers = models.JSONField(default=list, blank=True)
    # "stereo_channels" (a speaker per channel) or "single_speaker" (mono; no diarization backend installed).
    speaker_separation = models.CharField(max_length=20, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    upload_sha256 = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    transcribing_since = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="uploadedcall_owner_idx"),
            models.Index(fields=["status", "transcribing_since"], name="uploadedcall_status_idx"),
            models.Index(fields=["tenant", "created_at"], name="uploadedcall_retention_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "owner", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="uniq_uploadedcall_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    @property
    def progress(self) -> int:
        """Percent done: the transcription's progress while transcribing (analysis is the last few percent)."""
        if self.status == self.Status.COMPLETED:
            return 100
        if self.status == self.Status.TRANSCRIBING and self.transcription is not None:
            return min(95, int(self.transcription.progress * 0.95))
        return 0


def _action_item_id() -> str:
    return new_id("ai_")


class ActionItem(models.Model):
    """A commitment found in an uploaded call. `owner_name` follows the call's speaker map (PATCH .../speakers)."""

    id = models.CharField(primary_key=True, max_length=40, default=_action_item_id, editable=False)
    call = models.ForeignKey(UploadedCall, on_delete=models.CASCADE, related_name="action_items")
    # The user whose call it is: GET /api/action-items lists a user's items across their calls.
    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="action_items")
    text = models.TextField()
    owner_name = models.CharField(max_length=200, blank=True, default="")
    owner_speaker_id = models.CharField(max_length=40, blank=True, default="")
    speaker_id = models.CharField(max_length=40, blank=True, default="")
    due_date = models.DateField(null=True, blank=True)
    due_text = models.CharField(max_length=200, blank=True, default="")
    at_seconds = models.FloatField(default=0.0)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "done", "-created_at", "-id"], name="actionitem_user_open_idx")]

    def __str__(self) -> str:
        return f"{self.id}: {self.text[:40]}"
