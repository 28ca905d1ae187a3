"""Audio bombs: a few kilobytes of FLAC can hold hours of silence. MAX_AUDIO_SECONDS caps every file (uploads and
recordings), refused at request time when its length is known and failing the job otherwise; decoding streams,
so a worker's memory does not grow with the file's length."""

from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path

import av
import pytest
from django.conf import LazySettings

from recordings.models import MediaEntry
from transcription.audio import BLOCK_SECONDS, SAMPLE_RATE, AudioTooLong, audio_blocks, audio_channel
from transcription.models import Transcription, UploadedCall
from transcription.tasks import transcription_run_task
from transcription.tests.analysis_support import stored_files, upload
from transcription.tests.conftest import run
from transcription.tests.factories import composite_add, recording_make, room_make

pytestmark = pytest.mark.usefixtures("media_root")


def _silence(path: Path, seconds: int) -> Path:
    """A FLAC of silence: a few kilobytes per minute."""
    if not path.exists():
        run(
            "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
            "-t", str(seconds), "-c:a", "flac", str(path),
        )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def two_minutes_of_silence(speech_dir: Path) -> Path:
    return _silence(speech_dir / "silence-120s.flac", 120)


@pytest.fixture(scope="session")
def ten_minutes_of_silence(speech_dir: Path) -> Path:
    return _silence(speech_dir / "silence-600s.flac", 600)


def test_an_upload_longer_than_max_audio_seconds_is_refused_and_nothing_is_stored(
    acme, media_root: Path, settings: LazySettings, two_minutes_of_silence: Path
) -> None:
    settings.MAX_AUDIO_SECONDS = 60
    content = two_minutes_of_silence.read_bytes()
    assert len(content) < 200_000  # the bomb: small on the wire, long when decoded

    response = upload(acme.user("alice"), content, name="quiet.flac")

    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "audio_too_long" and "MAX_AUDIO_SECONDS" in body["detail"]
    assert stored_files(media_root) == []
    assert not MediaEntry.objects.exists() and not UploadedCall.objects.exists()


def test_an_upload_within_max_audio_seconds_is_accepted(
    acme, settings: LazySettings, two_minutes_of_silence: Path
) -> None:
    settings.MAX_AUDIO_SECONDS = 180
    response = upload(acme.user("alice"), two_minutes_of_silence.read_bytes(), name="quiet.flac")
    assert response.status_code == 202, response.content


def test_transcribing_a_recording_measured_longer_than_the_cap_is_refused(
    acme, settings: LazySettings, two_minutes_of_silence: Path
) -> None:
    settings.MAX_AUDIO_SECONDS = 60
    recording = recording_make(room_make(acme.tenant))
    entry = composite_add(recording, two_minutes_of_silence)
    MediaEntry.objects.filter(pk=entry.pk).update(duration_seconds=120.0)

    response = acme.server().post(f"/v1/recordings/{recording.pk}/transcribe", {}, format="json")

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "audio_too_long"
    assert not Transcription.objects.exists()


def test_a_job_over_a_file_of_unknown_length_past_the_cap_fails_with_audio_too_long(
    acme, settings: LazySettings, stt_engine, two_minutes_of_silence: Path
) -> None:
    settings.MAX_AUDIO_SECONDS = 60
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, two_minutes_of_silence)  # no duration measured
    job = Transcription.objects.create(tenant=acme.tenant, recording=recording)

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert job.error.startswith("audio_too_long:"), job.error
    assert not job.segments.exists()


def test_decoding_stops_at_the_cap_even_when_the_container_does_not_say_how_long_it_is(speech_dir: Path) -> None:
    # FLAC written to a pipe has no total in its header (the encoder could not seek back): only decoding tells.
    streamed = speech_dir / "streamed-silence.flac"
    with streamed.open("wb") as out:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "120",
             "-c:a", "flac", "-f", "flac", "pipe:1"],
            stdout=out, check=True, timeout=60,
        )  # fmt: skip
    with av.open(str(streamed)) as container:
        assert container.duration is None
    decoded = 0
    with pytest.raises(AudioTooLong):
        for block in audio_blocks(streamed, max_seconds=45):
            decoded += block.shape[1]
    assert 0 < decoded <= 45 * SAMPLE_RATE


def test_decoding_a_long_file_holds_one_block_at_a_time(ten_minutes_of_silence: Path) -> None:
    tracemalloc.start()
    try:
        seconds = 0.0
        for block in audio_channel(ten_minutes_of_silence, channel=None):
            assert len(block) <= (BLOCK_SECONDS + 1) * SAMPLE_RATE
            seconds += len(block) / SAMPLE_RATE
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds == pytest.approx(600, abs=0.1)
    # Ten minutes of 16 kHz float32 is 38 MB; streaming holds a 30 s block (1.9 MB) and its parts.
    assert peak < 8 * 1024 * 1024, peak


def test_a_long_file_is_transcribed_in_bounded_memory(
    settings: LazySettings, stt_engine, ten_minutes_of_silence: Path
) -> None:
    settings.STT_CHUNK_SECONDS = 60.0
    tracemalloc.start()
    try:
        (result,) = stt_engine.transcribe_file(ten_minutes_of_silence)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.duration == pytest.approx(600, abs=0.1) and result.segments == []
    # Whole, the file would be 38 MB of samples (and twice that while joined); a piece is 65 s at most (4 MB).
    assert peak < 30 * 1024 * 1024, peak
