"""Transcriptions and their segments.

A `Transcription` is one job (post-call now; live sessions reuse the model with mode "live"). Its status moves
queued -> processing -> completed | failed; a failed or completed job may be queued again (re-run). Segments are
written in one transaction when the job completes, so a reader never sees half a transcript.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from scaiwave.ids import new_id
from scaiwave.models import Tenant


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
