"""Writes of the transcription app: queue post-call jobs, run them, delete them.

The job (`transcription_run`, called by the Celery task on the `transcription` queue) decodes the recording's
audio, transcribes it with the process's engine, and stores segments with speakers:
- per-speaker audio tracks (one audio track egress per participant): each track transcribed on its own and
  merged by time, labelled with its participant — exact attribution, no guessing;
- otherwise one mixed file: a stereo file whose channels differ gives a speaker per channel; a mono file is
  one speaker. Names come from the request's `participants` map, else "Speaker 1..n".
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from rooms.services import iso_ms
from scaiwave.api.errors import ProblemError
from scaiwave.audit import deletion_record
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant
from transcription.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioFacts,
    AudioTooLong,
    Samples,
    audio_channel,
    audio_measure,
)
from transcription.capabilities import post_call_available
from transcription.engine import (
    Segment,
    SpeechEngine,
    UnsupportedLanguage,
    engine_get,
    segment_split_at_pauses,
    whisper_language_for,
)
from transcription.exports import transcript_as_text
from transcription.model_files import ModelUnavailable
from transcription.models import Transcription, TranscriptSegment

if TYPE_CHECKING:
    from recordings.models import MediaEntry, Recording

logger = logging.getLogger(__name__)

# Progress is written at most this often (seconds) so a long job does not hammer the row.
PROGRESS_WRITE_INTERVAL = 1.0
# A segment is cut where its words pause longer than this (seconds), so every segment sits at the time its own
# words were spoken and voices merge in speaking order.
SEGMENT_PAUSE_SECONDS = 1.0
# A track whose file began this long after the recording's may have missed its speaker's first words (see
# _lead_in); they are looked for up to TRACK_LEAD_IN_SECONDS before it, in the recording's mixed file.
TRACK_LEAD_IN_MIN_SECONDS = 0.3
TRACK_LEAD_IN_SECONDS = 3.0
TRACK_LEAD_IN_OVERLAP_SECONDS = 1.0


class TranscriptionRetry(Exception):
    """A transient failure: the task should retry the job later."""


# --- Queueing --------------------------------------------------------------------------------------


def _check_available(*, tenant: Tenant) -> None:
    if not post_call_available():
        raise ProblemError(
            503,
            "transcription_unavailable",
            "Post-call transcription is not available on this server (disabled, or no speech model installed).",
        )
    if not tenant.transcription_enabled:
        raise ProblemError(403, "transcription_disabled", "Transcription is disabled for this tenant.")


def _check_language(language: str) -> None:
    try:
        code = whisper_language_for(language)
    except UnsupportedLanguage as exc:
        raise ProblemError(
            400, "unsupported_language", str(exc), errors={"language": ["Unsupported language."]}
        ) from None
    if code not in (None, "en") and settings.STT_MODEL.endswith(".en"):
        raise ProblemError(
            400,
            "unsupported_language",
            f"The configured speech model ({settings.STT_MODEL}) only transcribes English.",
            errors={"language": ["Only English is available."]},
        )


def transcription_check_audio_length(*, seconds: float | None) -> None:
    """Refuse audio that lasts longer than MAX_AUDIO_SECONDS, when its length is known (a container's header, a
    recording's measured duration). Unknown lengths pass: the job's streaming decode stops at the cap.

    Raises ProblemError 422 audio_too_long.
    """
    cap = settings.MAX_AUDIO_SECONDS
    if seconds is not None and seconds > cap:
        raise ProblemError(
            422,
            AudioTooLong.code,
            f"The audio lasts {seconds:.0f} seconds; this server transcribes at most {cap:g} (MAX_AUDIO_SECONDS).",
        )


def _queue(transcription: Transcription) -> None:
    from transcription.tasks import transcription_run_task

    transcription_id = transcription.pk
    transaction.on_commit(lambda: transcription_run_task.delay(transcription_id))


@transaction.atomic
def transcription_request(
    *, tenant: Tenant, recording_id: str, language: str = "en-US", participants: dict[str, str] | None = None
) -> Transcription:
    """Queue a post-call transcription of one of the tenant's recordings (POST .../transcribe).

    Raises ProblemError 503 transcription_unavailable, 403 transcription_disabled, 400 unsupported_language,
    404 recording_not_found, 409 recording_not_ready, 422 audio_too_long. Locks the recording row so two
    requests queue in order.
    """
    from recordings.models import Recording

    _check_available(tenant=tenant)
    _check_language(language)
    recording = Recording.objects.select_for_update().filter(tenant=tenant, pk=recording_id).first()
    if recording is None:
        raise ProblemError(404, "recording_not_found", f"No recording {recording_id!r}.")
    if recording.status != Recording.Status.READY or not recording.media_entries.exists():
        raise ProblemError(
            409,
            "recording_not_ready",
            f"Recording {recording_id!r} has no finished media yet (status {recording.status}).",
        )
    entries = recording.media_entries.filter(missing_since__isnull=True)
    for seconds in entries.values_list("duration_seconds", flat=True):
        transcription_check_audio_length(seconds=seconds)
    transcription = Transcription.objects.create(
        tenant=tenant,
        recording=recording,
        language=language,
        speaker_map=dict(participants or {}),
        model=settings.STT_MODEL,
    )
    _queue(transcription)
    return transcription


@transaction.atomic
def transcription_create_for_media(
    *,
    tenant: Tenant,
    media_entry: MediaEntry,
    language: str = "en-US",
    participants: dict[str, str] | None = None,
    queue: bool = True,
) -> Transcription:
    """Queue a transcription of one stored file (an upload for analysis). Same errors as transcription_request.

    With queue=False the job is only created: the caller runs it (uploaded-call analysis runs it in its own task).
    """
    _check_available(tenant=tenant)
    _check_language(language)
    transcription = Transcription.objects.create(
        tenant=tenant,
        media_entry=media_entry,
        recording_id=media_entry.recording_id,
        language=language,
        speaker_map=dict(participants or {}),
        model=settings.STT_MODEL,
    )
    if queue:
        _queue(transcription)
    return transcription


def transcription_queue_for_recording(recording: Recording) -> Transcription | None:
    """RECORDING_READY_HANDLERS entry: transcribe a recording made with `transcript: true` once it is ready.

    Idempotent: a recording that already has a post-call transcription (any status but failed) gets no other.
    Does nothing when the recording did not ask for a transcript or transcription is unavailable.
    """
    if not recording.transcript or not post_call_available():
        return None
    from recordings.models import Recording

    with transaction.atomic():
        # The recording's row lock keeps two deliveries of "ready" from queueing two jobs.
        Recording.objects.select_for_update().filter(pk=recording.pk).first()
        tenant = Tenant.objects.get(pk=recording.tenant_id)
        if not tenant.transcription_enabled:
            return None
        existing = (
            Transcription.objects.filter(recording_id=recording.pk, mode=Transcription.Mode.POST_CALL)
            .exclude(status=Transcription.Status.FAILED)
            .first()
        )
        if existing is not None:
            return existing
        transcription = Transcription.objects.create(tenant=tenant, recording_id=recording.pk, model=settings.STT_MODEL)
        _queue(transcription)
        return transcription


@transaction.atomic
def transcription_requeue(*, transcription: Transcription) -> bool:
    """Queue a finished (completed or failed) post-call job again; False if it is queued or running now."""
    locked = Transcription.objects.select_for_update().get(pk=transcription.pk)
    if not locked.is_finished or locked.mode != Transcription.Mode.POST_CALL:
        return False
    locked.status = Transcription.Status.QUEUED
    locked.progress = 0
    locked.error = ""
    locked.attempts = 0
    locked.completed_at = None
    locked.save(update_fields=["status", "progress", "error", "attempts", "completed_at"])
    _queue(locked)
    return True


@transaction.atomic
def transcription_delete(*, transcription: Transcription, actor: str) -> None:
    """Delete a transcription and all its segments (exports are rendered on request, nothing else is stored);
    `transcription_deleted` names the actor (scaiwave.audit).

    A job still running notices on completion that its row is gone and stores nothing.
    """
    deleted, _ = Transcription.objects.filter(pk=transcription.pk).delete()
    if deleted:
        deletion_record(
            tenant=transcription.tenant,
            type="transcription_deleted",
            object_id=transcription.pk,
            actor=actor,
            recordingId=transcription.recording_id,
        )


# --- Running a job ---------------------------------------------------------------------------------


@dataclass
class AudioSource:
    """One file to transcribe, where its time 0 sits on the recording's clock, and whose voice it is."""

    key: str
    offset: float = 0.0
    speaker_label: str = ""
    speaker_name: str = ""
    duration: float | None = None  # as the recordings app measured it, when it did
    # A per-speaker track: the recording's mixed file, which holds what was said before the track file began.
    lead_in_key: str = ""


@dataclass
class SpeakerSegment:
    segment: Segment
    speaker_label: str
    speaker_name: str


@contextmanager
def _local_file(key: str) -> Iterator[Path]:
    """A local path for a stored object: the file itself on file storage, a temporary copy elsewhere (S3)."""
    try:
        local = default_storage.path(key)
    except NotImplementedError:
        local = ""
    if local:
        yield Path(local)
        return
    suffix = Path(key).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="scaiwave-stt-") as tmp:
        with default_storage.open(key, "rb") as source:
            shutil.copyfileobj(source, tmp, length=1 << 20)
        tmp.flush()
        yield Path(tmp.name)


def _display_name(*, identity: str, token_name: str, speaker_map: dict[str, str], keys: list[str]) -> str:
    """A track's speaker name: the request's map (track sid, then identity), then the display `name` of the
    participant's LiveKit token, then the identity."""
    for key in keys:
        if key and speaker_map.get(key):
            return str(speaker_map[key])
    return token_name or identity


def _sources_for(transcription: Transcription) -> tuple[list[AudioSource], bool]:
    """The files to transcribe and whether they are per-speaker tracks (True) or one mixed file (False)."""
    if transcription.media_entry_id is not None and transcription.media_entry is not None:
        entry = transcription.media_entry
        return [AudioSource(key=entry.key, duration=entry.duration_seconds)], False
    recording = transcription.recording
    if recording is None:
        raise AudioDecodeError("The recording this transcription was made from is gone.")
    entries = list(recording.media_entries.filter(missing_since__isnull=True).select_related("egress"))
    tracks = [e for e in entries if e.egress is not None and e.egress.kind == "track_audio"]
    if tracks:
        # Each track egress started when its participant's track did: place it on the recording's clock, which is
        # the composite's (both egresses take the same time to become active after they are asked for).
        mixed = [e for e in entries if e.egress is not None and e.egress.kind == "room_composite"]
        starts = [e.egress.created_at for e in (mixed or tracks) if e.egress is not None]
        origin = min(starts)
        sources = []
        for entry in tracks:
            egress = entry.egress
            assert egress is not None
            label = egress.participant_identity or egress.track_sid or entry.pk
            sources.append(
                AudioSource(
                    key=entry.key,
                    duration=entry.duration_seconds,
                    offset=max(0.0, (egress.created_at - origin).total_seconds()),
                    lead_in_key=mixed[0].key if mixed else "",
                    speaker_label=label,
                    speaker_name=_display_name(
                        identity=egress.participant_identity,
                        token_name=egress.participant_name,
                        speaker_map=transcription.speaker_map,
                        keys=[egress.track_sid, egress.participant_identity],
                    ),
                )
            )
        return sources, True
    composite = [e for e in entries if e.source != "transcript_export"]
    if not composite:
        raise AudioDecodeError("The recording has no stored media to transcribe.")
    # The oldest file is the recording itself; later entries would be derived files.
    composite.sort(key=lambda e: e.created_at)
    return [AudioSource(key=composite[0].key, duration=composite[0].duration_seconds)], False


def _channel_speakers(count: int, speaker_map: dict[str, str]) -> list[tuple[str, str]]:
    """(label, name) for each of `count` unattributed voices ("Speaker n").

    The map names them by label ({"Speaker 1": "Agent"}); a one-voice file also takes a map's only name.
    (Key order cannot carry meaning: the map is stored as JSONB, which does not keep it.)
    """
    names = [str(v) for v in speaker_map.values() if v]
    speakers = []
    for index in range(count):
        label = f"Speaker {index + 1}"
        name = speaker_map.get(label) or (names[0] if count == 1 and len(names) == 1 else label)
        speakers.append((label, str(name)))
    return speakers


class _ProgressWriter:
    """Writes the job's percent done to its row, at most once per PROGRESS_WRITE_INTERVAL.

    Sources are weighted by their measured durations when all are known, else equally: a source is decoded only
    when its turn comes, so the total is not known up front otherwise.
    """

    def __init__(self, transcription_id: str, sources: list[AudioSource]) -> None:
        self.transcription_id = transcription_id
        durations = [s.duration for s in sources]
        self.weights = [float(d) for d in durations if d] if all(durations) else [1.0] * len(sources)
        self.total = max(sum(self.weights), 1e-6)
        self.index = 0
        self.parts = 1  # channels of the current source, transcribed one after the other
        self.part = 0
        self.last_write = 0.0
        self.last_percent = -1

    def update(self, done: float, total: float) -> None:
        fraction = (self.part + (done / total if total else 1.0)) / self.parts
        before = sum(self.weights[: self.index])
        percent = min(99, int(100 * (before + fraction * self.weights[self.index]) / self.total))
        now = time.monotonic()
        if percent != self.last_percent and now - self.last_write >= PROGRESS_WRITE_INTERVAL:
            Transcription.objects.filter(pk=self.transcription_id, status=Transcription.Status.PROCESSING).update(
                progress=percent
            )
            self.last_write, self.last_percent = now, percent


def _claim(transcription_id: str) -> Transcription | None:
    """Mark a queued job processing (or take back one whose worker died); None if there is nothing to do."""
    with transaction.atomic():
        transcription = (
            Transcription.objects.select_for_update()
            .filter(pk=transcription_id, status__in=[Transcription.Status.QUEUED, Transcription.Status.PROCESSING])
            .first()
        )
        if transcription is None:
            return None
        transcription.status = Transcription.Status.PROCESSING
        transcription.started_at = timezone.now()
        transcription.attempts += 1
        transcription.progress = 0
        transcription.error = ""
        transcription.save(update_fields=["status", "started_at", "attempts", "progress", "error"])
        # A previous run that died half-way may have left rows behind.
        TranscriptSegment.objects.filter(transcription=transcription).delete()
    return Transcription.objects.select_related("recording", "recording__room", "media_entry", "tenant").get(
        pk=transcription_id
    )


def _voices(
    transcription: Transcription, facts: AudioFacts, source: AudioSource, per_speaker: bool
) -> list[tuple[int | None, str, str]]:
    """(channel, label, name) for each voice in one source; channel None is the whole file mixed to mono."""
    if per_speaker:
        return [(None, source.speaker_label, source.speaker_name)]
    if facts.distinct_channels:
        speakers = _channel_speakers(2, transcription.speaker_map)
        return [(channel, label, name) for channel, (label, name) in enumerate(speakers)]
    ((label, name),) = _channel_speakers(1, transcription.speaker_map)
    return [(None, label, name)]


def _transcribe(transcription: Transcription) -> tuple[list[SpeakerSegment], float, str]:
    """Decode and transcribe every source, one at a time, each as a stream (memory is bounded by the engine's
    piece length, not by the file's). A first pass measures each file (duration, distinct channels) and refuses
    one longer than MAX_AUDIO_SECONDS before any speech is recognised.

    Returns (segments ordered by time, audio duration on the recording's clock, detected language).
    Raises AudioDecodeError, AudioTooLong.
    """
    engine = engine_get()
    language = whisper_language_for(transcription.language)
    cap = settings.MAX_AUDIO_SECONDS
    sources, per_speaker = _sources_for(transcription)
    for source in sources:
        if source.duration is not None and source.duration > cap:
            raise AudioTooLong(cap)  # measured when the file was registered: no need to read it
    progress = _ProgressWriter(transcription.pk, sources)
    results: list[SpeakerSegment] = []
    duration = 0.0
    detected = ""
    for index, source in enumerate(sources):
        with _local_file(source.key) as path:
            facts = audio_measure(path, split_channels=not per_speaker, max_seconds=cap)
            duration = max(duration, source.offset + facts.duration)
            voices = _voices(transcription, facts, source, per_speaker)
            progress.index, progress.parts = index, len(voices)
            for part, (channel, label, name) in enumerate(voices):
                progress.part = part
                result = engine.transcribe_blocks(
                    audio_channel(path, channel=channel, max_seconds=cap),
                    duration=facts.duration,
                    language=language,
                    offset=source.offset,
                    progress=progress.update,
                )
                detected = detected or (result.language if result.segments else "")
                results += [
                    SpeakerSegment(piece, label, name)
                    for segment in result.segments
                    for piece in segment_split_at_pauses(segment, pause=SEGMENT_PAUSE_SECONDS)
                ]
    for source in sources:
        if source.lead_in_key and source.offset > TRACK_LEAD_IN_MIN_SECONDS:
            results += _lead_in(engine, source, results, language=language, cap=cap)
    results.sort(key=lambda s: (s.segment.start, s.segment.end, s.speaker_label))
    return results, duration, detected or (language or "")


def _window(path: Path, *, start: float, end: float, cap: float) -> Samples:
    """Mono samples of `path` between `start` and `end` seconds, decoded as a stream (nothing else is kept)."""
    first, last = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    kept: list[Samples] = []
    position = 0
    for block in audio_channel(path, channel=None, max_seconds=cap):
        lo, hi = max(first - position, 0), min(last - position, len(block))
        if lo < hi:
            kept.append(block[lo:hi])
        position += len(block)
        if position >= last:
            break
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.float32)


def _bare(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum())


def _lead_in(
    engine: SpeechEngine, track: AudioSource, heard: list[SpeakerSegment], *, language: str | None, cap: float
) -> list[SpeakerSegment]:
    """What the track's speaker said just before their track file began, taken from the mixed file.

    A track egress is started when LiveKit reports the track (track_published), so the first words of someone who
    speaks as they join ("Good morning Bob.") are only in the composite. Words there in the
    TRACK_LEAD_IN_SECONDS before the track's file, that end before the track's own first word and overlap no other
    speaker's words, are the track speaker's.
    """
    own = sorted((s.segment for s in heard if s.speaker_label == track.speaker_label), key=lambda s: s.start)
    first_own = own[0].start if own else track.offset + TRACK_LEAD_IN_OVERLAP_SECONDS
    first_word = _bare(own[0].words[0].text) if own and own[0].words else ""
    others = [(w.start, w.end) for s in heard if s.speaker_label != track.speaker_label for w in s.segment.words]
    start = max(0.0, track.offset - TRACK_LEAD_IN_SECONDS)
    with _local_file(track.lead_in_key) as path:
        samples = _window(path, start=start, end=track.offset + TRACK_LEAD_IN_OVERLAP_SECONDS, cap=cap)
    result = engine.transcribe_samples(samples, language=language, offset=start)
    words = [
        word
        for segment in result.segments
        for word in segment.words
        # Began before the track's file and its first word (the clocks agree to a few hundred ms), and is not that
        # first word heard again in full where the track caught only its end.
        if word.start < min(track.offset, first_own) - 0.1
        and not (word.end > first_own and _bare(word.text) == first_word)
        and not any(word.start < other_end and other_start < word.end for other_start, other_end in others)
    ]
    if not words:
        return []
    segment = Segment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.text for w in words),
        words=tuple(words),
        confidence=min(s.confidence for s in result.segments),
        language=result.language,
    )
    return [SpeakerSegment(segment, track.speaker_label, track.speaker_name)]


def _finish(transcription_id: str, segments: list[SpeakerSegment], duration: float, detected: str) -> None:
    """Store the segments and complete the job in one transaction; emit the event and post to the timeline."""
    with transaction.atomic():
        transcription = (
            Transcription.objects.select_for_update(of=("self",))
            .select_related("tenant", "recording", "recording__room", "recording__call")
            .filter(pk=transcription_id)
            .first()
        )
        if transcription is None or transcription.status != Transcription.Status.PROCESSING:
            return  # deleted meanwhile, or another run of the same job finished first
        TranscriptSegment.objects.filter(transcription=transcription).delete()
        rows = TranscriptSegment.objects.bulk_create(
            TranscriptSegment(
                transcription=transcription,
                index=index,
                start=item.segment.start,
                end=item.segment.end,
                text=item.segment.text,
                speaker_label=item.speaker_label,
                speaker_name=item.speaker_name,
                words=[w.as_json() for w in item.segment.words],
                confidence=item.segment.confidence,
            )
            for index, item in enumerate(segments)
        )
        transcription.status = Transcription.Status.COMPLETED
        transcription.progress = 100
        transcription.duration = round(duration, 3)
        transcription.detected_language = detected
        transcription.completed_at = timezone.now()
        transcription.save(update_fields=["status", "progress", "duration", "detected_language", "completed_at"])
        data = _emit_outcome(
            transcription,
            "transcription_completed",
            duration=transcription.duration,
            segmentCount=len(rows),
            completedAt=iso_ms(transcription.completed_at),
        )
        recording = transcription.recording
        if recording is not None and recording.call_id is not None:
            _post_to_timeline(recording=recording, data=data, text=transcript_as_text(rows))


# Long transcripts are cut in the timeline entry; the whole one stays at GET /v1/transcriptions/{id}.
TIMELINE_TEXT_LIMIT = 20_000


def _post_to_timeline(*, recording: Recording, data: dict[str, Any], text: str) -> None:
    try:
        from calls.services import timeline_post
    except ImportError:  # the calls app has no timeline on this build
        return
    timeline_post(
        room=recording.room,
        kind="transcript",
        data={**data, "text": text[:TIMELINE_TEXT_LIMIT], "truncated": len(text) > TIMELINE_TEXT_LIMIT},
        call=recording.call,
    )


def _fail(transcription_id: str, error: str) -> None:
    """Fail a job this worker holds (still processing) for good, and say so once."""
    with transaction.atomic():
        transcription = (
            Transcription.objects.select_for_update(of=("self",))
            .filter(pk=transcription_id, status=Transcription.Status.PROCESSING)
            .first()
        )
        if transcription is None:
            return  # deleted meanwhile, or another run of the same job ended it first
        _mark_failed(transcription, error)


def _mark_failed(transcription: Transcription, error: str) -> None:
    """Inside the caller's transaction, with the row locked: the job is failed and `transcription_failed` is
    emitted with it, so that a receiver waiting for `transcription_completed` hears that none will come."""
    transcription.status = Transcription.Status.FAILED
    transcription.error = error[:2000]
    transcription.completed_at = timezone.now()
    transcription.save(update_fields=["status", "error", "completed_at"])
    _emit_outcome(
        transcription,
        "transcription_failed",
        error=transcription.error,
        failedAt=iso_ms(transcription.completed_at),
    )


def _emit_outcome(transcription: Transcription, event_type: str, **details: Any) -> dict[str, Any]:
    """Emit how a post-call job ended (`transcription_completed` or `transcription_failed`): its ids, status and
    language, then `details`, to the recording's room, the user who asked for the recording, and webhooks.
    Returns the event's data."""
    recording = transcription.recording
    data = {
        "transcriptionId": transcription.pk,
        "recordingId": transcription.recording_id,
        "roomId": recording.room.name if recording is not None else None,
        "status": transcription.status,
        "language": transcription.language,
        **details,
    }
    event_emit(
        tenant=transcription.tenant,
        type=event_type,
        data=data,
        user_ids=[recording.requested_by_id] if recording is not None and recording.requested_by_id else [],
        room_key=str(recording.room_id) if recording is not None else "",
    )
    return data


def transcriptions_recover_stuck(*, older_than_seconds: float | None = None, batch: int = 100) -> int:
    """Beat: take back post-call jobs whose worker died. A job queued or processing for longer than
    TRANSCRIPTION_STUCK_AFTER (past the task's hard time limit, so no live worker still holds it) is queued
    again, or failed once TRANSCRIPTION_MAX_RETRIES is spent. Without this a job lost with its worker would
    wait for the broker's visibility time-out. Rows are claimed with skip_locked. Returns how many it touched."""
    age = settings.TRANSCRIPTION_STUCK_AFTER if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=age)
    live_statuses = [Transcription.Status.QUEUED, Transcription.Status.PROCESSING]
    stuck_ids = list(
        Transcription.objects.filter(mode=Transcription.Mode.POST_CALL, status__in=live_statuses)
        .filter(Q(started_at__lte=cutoff) | Q(started_at__isnull=True, created_at__lte=cutoff))
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    touched = 0
    for transcription_id in stuck_ids:
        with transaction.atomic():
            job = (
                Transcription.objects.select_for_update(skip_locked=True)
                .filter(pk=transcription_id, status__in=live_statuses)
                .first()
            )
            if job is None:
                continue
            if job.attempts > settings.TRANSCRIPTION_MAX_RETRIES:
                _mark_failed(job, "The worker running this transcription was lost and no retries are left.")
            else:
                job.status = Transcription.Status.QUEUED
                job.error = "The worker running this transcription was lost; queued again."
                job.started_at = timezone.now()  # the next sweep waits a full period again
                job.save(update_fields=["status", "error", "started_at"])
                _queue(job)
            touched += 1
        # This job is taken back and committed (its task queued); the stuck jobs after it are not yet.
        failpoint("transcription.recover_stuck.recovered")
    return touched


def transcription_run(*, transcription_id: str) -> None:
    """Run one post-call job to completion. Safe to call twice: a finished job is left alone, a job whose worker
    died is taken back and its partial segments cleared.

    Permanent failures (no audio, undecodable file, no model, unsupported language, too long) mark the job
    failed. Anything else is transient: the job goes back to queued and TranscriptionRetry is raised, until
    TRANSCRIPTION_MAX_RETRIES is spent, then it is marked failed.
    """
    transcription = _claim(transcription_id)
    if transcription is None:
        return
    failpoint("transcription.run.claimed")
    try:
        segments, duration, detected = _transcribe(transcription)
    except AudioTooLong as exc:
        _fail(transcription_id, f"{exc.code}: {exc}")
        return
    except (AudioDecodeError, ModelUnavailable, UnsupportedLanguage) as exc:
        _fail(transcription_id, str(exc))
        return
    except SoftTimeLimitExceeded:
        _fail(transcription_id, "The recording took longer to transcribe than the task time limit.")
        return
    except Exception as exc:
        logger.exception("transcription failed", extra={"transcription_id": transcription_id})
        if transcription.attempts > settings.TRANSCRIPTION_MAX_RETRIES:
            _fail(transcription_id, f"Transcription failed: {exc}")
            return
        Transcription.objects.filter(pk=transcription_id, status=Transcription.Status.PROCESSING).update(
            status=Transcription.Status.QUEUED, error=f"Retrying after: {exc}"[:2000]
        )
        raise TranscriptionRetry(str(exc)) from exc
    _finish(transcription_id, segments, duration, detected)
