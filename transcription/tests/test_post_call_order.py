"""Post-call transcripts of several voices are in the order the words were spoken, whatever the track."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcription.models import Transcription
from transcription.tasks import transcription_run_task
from transcription.tests.conftest import espeak, normalise, run
from transcription.tests.factories import recording_make, room_make, track_add

pytestmark = pytest.mark.usefixtures("stt_engine", "media_root")


def _track(path: Path, lines: list[tuple[float, str]], *, total: float) -> Path:
    """A 48 kHz Opus track (what track egress writes): each line starts at its time, silence between."""
    parts = []
    for index, (at, text) in enumerate(lines):
        spoken = espeak(path.with_name(f"{path.stem}-{index}.wav"), text)
        delayed = path.with_name(f"{path.stem}-{index}-at.wav")
        # espeak() already leads with 0.5 s of silence.
        run("ffmpeg", "-y", "-loglevel", "error", "-i", str(spoken), "-af", f"adelay={int((at - 0.5) * 1000)}",
            str(delayed))  # fmt: skip
        parts.append(delayed)
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    run(
        "ffmpeg", "-y", "-loglevel", "error", *inputs, "-filter_complex",
        f"amix=inputs={len(parts)}:normalize=0,apad=whole_dur={total},aresample=48000", "-c:a", "libopus", str(path),
    )  # fmt: skip
    return path


def test_a_reply_never_comes_before_its_question_across_tracks(acme, speech_dir: Path) -> None:
    # Alice greets, waits for Bob's question, then answers it; the recognizer hears her track as one stretch.
    alice = _track(
        speech_dir / "order-alice.ogg",
        [(0.5, "Good morning Bob."), (9.0, "Yes, the report is ready.")],
        total=13,
    )
    bob = _track(speech_dir / "order-bob.ogg", [(4.0, "Is the report ready?")], total=13)
    recording = recording_make(room_make(acme.tenant))
    track_add(recording, alice, identity="alice", track_sid="TR_alice", started_after=0)
    track_add(recording, bob, identity="bob", track_sid="TR_bob", started_after=0)
    job = Transcription.objects.create(tenant=acme.tenant, recording=recording)

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed", job.error
    spoken = [(s.speaker_label, normalise(s.text), s.start, s.end) for s in job.segments.order_by("index")]
    said = [(label, text) for label, text, _, _ in spoken]
    question = next(i for i, (label, text) in enumerate(said) if label == "bob" and "ready" in text)
    answer = next(i for i, (label, text) in enumerate(said) if label == "alice" and "ready" in text)
    greeting = next(i for i, (label, text) in enumerate(said) if label == "alice" and "morning" in text)
    assert greeting < question < answer, spoken
    starts = [start for _, _, start, _ in spoken]
    assert starts == sorted(starts)
    assert spoken[answer][2] >= 8.0, spoken  # each segment spans its own words, not the pause before them


def test_a_track_is_named_by_the_map_then_its_token_name_then_its_identity(acme, speech_dir: Path) -> None:
    # A ScaiWave user with another display name must not win over the name in the participant's token.
    acme.user_row("gina-7a33", name="Gina from elsewhere")
    recording = recording_make(room_make(acme.tenant))
    clip = espeak(speech_dir / "names.wav", "Hello there.")
    track_add(recording, clip, identity="gina-7a33", track_sid="TR_gina", started_after=0, name="Gina Token-Name")
    track_add(recording, clip, identity="hank-1", track_sid="TR_hank", started_after=0, name="Hank Token-Name")
    track_add(recording, clip, identity="ivy-2", track_sid="TR_ivy", started_after=0)
    track_add(recording, clip, identity="jo-3", track_sid="TR_jo", started_after=0)
    job = Transcription.objects.create(
        tenant=acme.tenant, recording=recording, speaker_map={"TR_hank": "Hank from the map", "TR_jo": "Jo"}
    )

    transcription_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == "completed", job.error
    names = dict(job.segments.values_list("speaker_label", "speaker_name"))
    assert names == {"gina-7a33": "Gina Token-Name", "hank-1": "Hank from the map", "ivy-2": "ivy-2", "jo-3": "Jo"}
