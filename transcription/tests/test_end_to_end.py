"""A call recorded through the LiveKit emulator with `transcript: true`: two participants speak known sentences ->
per-speaker track egresses -> media entries -> transcription job -> segments attributed to the right participant,
the transcript on the room timeline, `transcription_completed` emitted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from calls.models import TimelineEntry
from recordings.models import Recording
from recordings.tests.conftest import (  # noqa: F401
    eager_tasks,
    emulator,
    livekit,
    local_storage,
    make_room,
    media_root,
    wait_for,
    wait_for_status,
    webhooks_to_scaiwave,
)
from recordings.tests.test_end_to_end import record_for
from scaiwave.models import Event
from transcription.models import Transcription
from transcription.tests.conftest import espeak, normalise, run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _speech_after(path: Path, text: str, *, silence: float, total: float) -> Path:
    """A mono WAV: `silence` seconds of nothing, then the sentence, padded to `total` seconds."""
    spoken = espeak(path.with_name(f"{path.stem}-raw.wav"), text)
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-i", str(spoken),
        "-af", f"adelay={int(silence * 1000)},apad=whole_dur={total}", str(path),
    )  # fmt: skip
    return path


@pytest.mark.usefixtures("webhooks_to_scaiwave", "local_storage", "stt_engine")
def test_a_call_recording_with_transcript_is_transcribed_per_participant(
    acme, request: pytest.FixtureRequest, settings, speech_dir: Path
) -> None:
    emu = request.getfixturevalue("livekit")
    settings.RECORDING_READY_HANDLERS = ["transcription.services.transcription_queue_for_recording"]
    from recordings.services import recording as recording_services

    recording_services._ready_handlers.cache_clear()
    request.addfinalizer(recording_services._ready_handlers.cache_clear)
    make_room(acme, "standup", {"alice": 0, "dave": 50})
    alice_says = _speech_after(
        speech_dir / "e2e-alice.wav", "The quarterly report is finished and ready for review.", silence=1.0, total=12
    )
    dave_says = _speech_after(
        speech_dir / "e2e-dave.wav", "Great, I will read it this afternoon.", silence=6.0, total=12
    )
    dave = acme.user("dave")
    call_id = dave.post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json").json()["data"][
        "call_id"
    ]
    livekit_room = f"scaiwave-{call_id}"
    for identity, speech in (("alice", alice_says), ("dave", dave_says)):
        emu.control.connect(emu.token(identity, livekit_room, can_publish=True, name=identity.title()))
        emu.control.publish(livekit_room, identity, file=speech, unpublish_on_end=False)

    recording_id, _ = record_for(
        dave,
        emu,
        f"/v1/calls/{call_id}/recording/start",
        f"/v1/calls/{call_id}/recording/stop",
        {"audio": True, "video": False, "transcript": True},
        talk=10.0,
    )
    recording = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED, timeout=40)
    assert recording.status == Recording.Status.READY, recording.failure_reason
    transcription = wait_for(
        lambda: Transcription.objects.filter(recording_id=recording_id, status__in=["completed", "failed"]).first(),
        timeout=60,
    )
    assert transcription.status == "completed", transcription.error

    segments = list(transcription.segments.order_by("index"))
    spoken = {s.speaker_name: normalise(s.text) for s in segments}
    assert set(spoken) == {"Alice", "Dave"}, spoken
    assert "quarterly report" in spoken["Alice"] and "afternoon" not in spoken["Alice"]
    assert "afternoon" in spoken["Dave"] and "report" not in spoken["Dave"]
    assert [s.speaker_label for s in segments] == ["alice", "dave"]  # Alice spoke first

    entry = TimelineEntry.objects.get(room__name="standup", kind="transcript")
    assert entry.call_id == call_id and entry.data["transcriptionId"] == transcription.pk
    assert "Alice: The quarterly report" in entry.data["text"]
    event = Event.objects.get(tenant=acme.tenant, type="transcription_completed")
    assert event.data["recordingId"] == recording_id and event.data["segmentCount"] == len(segments)


@pytest.mark.usefixtures("webhooks_to_scaiwave", "local_storage", "stt_engine")
def test_the_first_words_of_a_speaker_who_joins_a_running_recording_are_kept(
    acme, request: pytest.FixtureRequest, settings, speech_dir: Path
) -> None:
    """Alice publishes while the recording runs and greets at once: her track egress starts only after LiveKit's
    track_published webhook, so her track file misses the greeting; the composite has it."""
    emu = request.getfixturevalue("livekit")
    settings.RECORDING_READY_HANDLERS = ["transcription.services.transcription_queue_for_recording"]
    from recordings.services import recording as recording_services

    recording_services._ready_handlers.cache_clear()
    request.addfinalizer(recording_services._ready_handlers.cache_clear)
    make_room(acme, "standup", {"alice": 0, "dave": 50})
    greeting = espeak(speech_dir / "e2e-greeting-raw.wav", "Good morning Bob. The quarterly report is ready.")
    spoken = speech_dir / "e2e-greeting.wav"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-i", str(greeting), "-af", "atrim=start=0.4,apad=pad_dur=2", str(spoken)
    )  # fmt: skip  (speech from the first instant of the track)
    dave = acme.user("dave")
    call_id = dave.post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json").json()["data"][
        "call_id"
    ]
    livekit_room = f"scaiwave-{call_id}"
    emu.control.connect(emu.token("dave", livekit_room, can_publish=True, name="Dave"))
    started = dave.post(
        f"/v1/calls/{call_id}/recording/start", {"audio": True, "video": False, "transcript": True}, format="json"
    )
    assert started.status_code == 201, started.content
    recording_id = started.json()["data"]["id"]
    wait_for_status(recording_id, Recording.Status.RECORDING)
    time.sleep(1.0)
    emu.control.connect(emu.token("alice", livekit_room, can_publish=True, name="Alice"))
    published = emu.control.publish(livekit_room, "alice", file=spoken, unpublish_on_end=False)
    time.sleep(float(published["duration"]) + 1.0)
    assert dave.post(f"/v1/calls/{call_id}/recording/stop", format="json").status_code == 200

    recording = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED, timeout=40)
    assert recording.status == Recording.Status.READY, recording.failure_reason
    transcription = wait_for(
        lambda: Transcription.objects.filter(recording_id=recording_id, status__in=["completed", "failed"]).first(),
        timeout=60,
    )
    assert transcription.status == "completed", transcription.error
    alice_said = normalise(" ".join(s.text for s in transcription.segments.filter(speaker_label="alice")))
    assert alice_said.startswith("good morning bob") and alice_said.count("morning") == 1, alice_said
    assert "quarterly report" in alice_said, alice_said
