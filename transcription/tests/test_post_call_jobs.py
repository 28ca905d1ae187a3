"""Post-call jobs through the Celery task function: segments, speakers, progress, events, the timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from calls.models import TimelineEntry
from scaiwave.models import Event
from transcription.models import Transcription, TranscriptSegment
from transcription.services import transcription_queue_for_recording
from transcription.tasks import transcription_run_task
from transcription.tests.conftest import espeak, librivox_clip, normalise, run
from transcription.tests.factories import call_make, composite_add, recording_make, room_make, track_add

pytestmark = pytest.mark.usefixtures("stt_engine", "media_root")


def _job(recording, **fields) -> Transcription:
    return Transcription.objects.create(tenant=recording.tenant, recording=recording, **fields)


def test_a_job_completes_with_segments_progress_and_an_event(acme) -> None:
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, librivox_clip("0880")[0])
    job = _job(recording)

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed" and job.progress == 100
    assert job.duration == pytest.approx(2.99, abs=0.05)
    assert job.detected_language == "en" and job.attempts == 1
    segments = list(job.segments.order_by("index"))
    assert "young man" in normalise(" ".join(s.text for s in segments))
    assert {s.speaker_label for s in segments} == {"Speaker 1"}
    assert all(s.words and s.confidence for s in segments)
    event = Event.objects.get(tenant=acme.tenant, type="transcription_completed")
    assert event.data["transcriptionId"] == job.pk
    assert event.data["segmentCount"] == len(segments)
    assert event.room_key == str(recording.room_id)


def test_two_participant_tracks_are_attributed_to_their_participants(acme, speech_dir: Path) -> None:
    recording = recording_make(room_make(acme.tenant))
    alice = espeak(speech_dir / "alice.wav", "Good morning everyone, the release is ready.")
    bob = espeak(speech_dir / "bob.wav", "Thank you, I will deploy it tonight.")
    track_add(recording, alice, identity="alice", track_sid="TR_alice", started_after=0, name="Alice Archer")
    track_add(recording, bob, identity="bob", track_sid="TR_bob", started_after=5, name="Bob's token name")
    job = _job(recording, speaker_map={"TR_bob": "Bob Baker"})

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed"
    segments = list(job.segments.order_by("index"))
    by_speaker = {s.speaker_name: normalise(s.text) for s in segments}
    assert set(by_speaker) == {"Alice Archer", "Bob Baker"}  # the token's name; the map's over the token's
    assert "release" in by_speaker["Alice Archer"] and "deploy" not in by_speaker["Alice Archer"]
    assert "deploy" in by_speaker["Bob Baker"]
    assert [s.speaker_label for s in segments] == ["alice", "bob"]  # merged by time
    bob_segment = segments[-1]
    assert bob_segment.start >= 5.0  # Bob's track started 5 s into the recording


def test_a_stereo_recording_gives_a_speaker_per_channel_named_from_the_map(acme, speech_dir: Path) -> None:
    left = espeak(speech_dir / "agent.wav", "Thanks for calling, how can I help?")
    right = espeak(speech_dir / "caller.wav", "My internet connection keeps dropping.")
    stereo = speech_dir / "phone-call.ogg"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-i", str(left), "-i", str(right), "-filter_complex",
        "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]", "-ac", "2", "-c:a", "libopus", str(stereo),
    )  # fmt: skip
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, stereo)
    job = _job(recording, speaker_map={"Speaker 1": "Agent", "Speaker 2": "Customer"})

    transcription_run_task(job.pk)

    segments = list(Transcription.objects.get(pk=job.pk).segments.order_by("index"))
    by_speaker = {s.speaker_name: normalise(s.text) for s in segments}
    assert "help" in by_speaker["Agent"] and "internet" in by_speaker["Customer"]
    assert {s.speaker_label for s in segments} == {"Speaker 1", "Speaker 2"}


def test_a_call_recording_transcript_is_posted_to_the_room_timeline(acme) -> None:
    room = room_make(acme.tenant)
    call = call_make(room, acme.user_row("alice", name="Alice"))
    recording = recording_make(room, call=call)
    composite_add(recording, librivox_clip("0930")[0])
    job = _job(recording)

    transcription_run_task(job.pk)

    entry = TimelineEntry.objects.get(room=room, kind="transcript")
    assert entry.call_id == call.pk
    assert entry.data["transcriptionId"] == job.pk
    assert "amiable" in normalise(entry.data["text"])


def test_running_a_job_twice_does_not_duplicate_segments(acme) -> None:
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, librivox_clip("0880")[0])
    job = _job(recording)
    transcription_run_task(job.pk)
    count = job.segments.count()

    transcription_run_task(job.pk)  # a redelivered message

    assert job.segments.count() == count
    assert Event.objects.filter(type="transcription_completed").count() == 1


def test_a_job_whose_worker_died_is_taken_back_and_partial_segments_cleared(acme) -> None:
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, librivox_clip("0880")[0])
    job = _job(recording, status="processing", attempts=1, progress=40)
    TranscriptSegment.objects.create(transcription=job, index=0, start=0, end=1, text="half a thought")
    TranscriptSegment.objects.create(transcription=job, index=7, start=9, end=10, text="stale")

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed" and job.attempts == 2
    texts = [s.text for s in job.segments.order_by("index")]
    assert "stale" not in texts and "half a thought" not in texts
    assert list(job.segments.values_list("index", flat=True)) == list(range(len(texts)))


def test_a_file_that_is_not_audio_fails_the_job_with_a_reason(acme, speech_dir: Path) -> None:
    junk = speech_dir / "junk.wav"
    junk.write_bytes(b"not audio" * 200)
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, junk)
    job = _job(recording)

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert "media" in job.error.lower() or "audio" in job.error.lower()
    assert not Event.objects.filter(type="transcription_completed").exists()
    failed = Event.objects.get(tenant=acme.tenant, type="transcription_failed")
    assert failed.data["transcriptionId"] == job.pk and failed.data["recordingId"] == recording.pk
    assert failed.data["status"] == "failed" and failed.data["error"] == job.error
    assert failed.data["failedAt"].endswith("Z") and failed.room_key == str(recording.room_id)

    transcription_run_task(job.pk)  # a second delivery of the task finds the job ended: no second event
    assert Event.objects.filter(type="transcription_failed").count() == 1


def test_a_recording_made_with_transcript_true_is_queued_once_when_ready(
    acme, django_capture_on_commit_callbacks
) -> None:
    recording = recording_make(room_make(acme.tenant), transcript=True)
    composite_add(recording, librivox_clip("0880")[0])
    with django_capture_on_commit_callbacks() as callbacks:
        first = transcription_queue_for_recording(recording)
        again = transcription_queue_for_recording(recording)
    assert first is not None and again == first
    assert len(callbacks) == 1
    assert Transcription.objects.filter(recording=recording).count() == 1


def test_a_recording_without_transcript_is_not_queued(acme) -> None:
    recording = recording_make(room_make(acme.tenant), transcript=False)
    assert transcription_queue_for_recording(recording) is None
    assert not Transcription.objects.exists()


def test_progress_is_written_while_the_job_runs(acme, speech_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from transcription import services

    monkeypatch.setattr(services, "PROGRESS_WRITE_INTERVAL", 0.0)
    recording = recording_make(room_make(acme.tenant))
    track_add(recording, librivox_clip("0880")[0], identity="alice", track_sid="TR_a", started_after=0)
    track_add(recording, librivox_clip("0930")[0], identity="bob", track_sid="TR_b", started_after=4)
    job = _job(recording)

    with CaptureQueriesContext(connection) as queries:
        transcription_run_task(job.pk)

    progress_writes = [q["sql"] for q in queries.captured_queries if 'SET "progress"' in q["sql"]]
    assert len(progress_writes) >= 2  # at least once per track, before the final 100
    assert Transcription.objects.get(pk=job.pk).progress == 100


def test_an_uploaded_file_is_transcribed_without_a_recording(
    acme, speech_dir: Path, django_capture_on_commit_callbacks
) -> None:
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from recordings.models import MediaEntry
    from transcription.services import transcription_create_for_media

    mp3 = speech_dir / "upload.mp3"
    run("ffmpeg", "-y", "-loglevel", "error", "-i", str(librivox_clip("0890")[0]), "-c:a", "libmp3lame", str(mp3))
    data = mp3.read_bytes()
    entry = MediaEntry.objects.create(
        tenant=acme.tenant,
        key=default_storage.save("uploads/call.mp3", ContentFile(data)),
        content_type="audio/mpeg",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source="upload",
    )
    with django_capture_on_commit_callbacks(execute=False):
        job = transcription_create_for_media(
            tenant=acme.tenant, media_entry=entry, participants={"Speaker 1": "Caller"}
        )
    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed" and job.recording_id is None
    assert "selfish" in normalise(" ".join(job.segments.values_list("text", flat=True)))
    assert set(job.segments.values_list("speaker_name", flat=True)) == {"Caller"}
    event = Event.objects.get(type="transcription_completed")
    assert event.data["recordingId"] is None and event.room_key == ""
