"""Room lifecycle and the media-simulation control API: joining with tokens, grants, timeouts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from livekit.protocol import room as rm

from livekit_emulator.testing import EmulatorControlError, wait_until

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def rooms(emu) -> list[str]:
    return [r["name"] for r in emu.control.state()["rooms"]]


def test_connect_auto_creates_the_room_and_applies_token_identity_and_grants(emu, sink):
    joined = emu.control.connect(
        emu.token("vic", "auto", name="Victor", metadata='{"a":1}', can_publish=False, hidden=True)
    )
    participant = joined["participant"]
    assert (joined["identity"], joined["room"], participant["name"], participant["metadata"]) == (
        "vic",
        "auto",
        "Victor",
        '{"a":1}',
    )
    assert participant["state"] == "ACTIVE" and participant["kind"] == "STANDARD"
    assert participant["permission"]["can_publish"] is False and participant["permission"]["hidden"] is True
    sink.wait_for(lambda ev: [e["event"] for e in ev] == ["room_started", "participant_joined"])


def test_a_viewer_cannot_publish_and_sources_are_enforced(emu):
    emu.control.connect(emu.token("viewer", "talk", can_publish=False))
    with pytest.raises(EmulatorControlError) as refused:
        emu.control.publish("talk", "viewer", tone={"frequency": 440, "seconds": 0.2})
    assert refused.value.status == 403

    emu.control.connect(emu.token("cam-only", "talk", can_publish_sources=["camera"]))
    with pytest.raises(EmulatorControlError) as mic:
        emu.control.publish("talk", "cam-only", kind="audio", source="microphone")
    assert mic.value.status == 403
    assert emu.control.publish("talk", "cam-only", kind="video", source="camera")["sid"].startswith("TR_")


def test_connect_refuses_bad_tokens_and_tokens_without_join(emu):
    with pytest.raises(EmulatorControlError) as bad:
        emu.control.connect("not-a-token")
    assert bad.value.status == 401
    from livekit import api

    no_join = (
        api.AccessToken(emu.api_key, emu.api_secret)
        .with_identity("x")
        .with_grants(api.VideoGrants(room_list=True))
        .to_jwt()
    )
    with pytest.raises(EmulatorControlError) as denied:
        emu.control.connect(no_join)
    assert denied.value.status == 403


def test_max_participants_is_enforced_at_join(emu):
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="tiny", max_participants=1)))
    emu.control.connect(emu.token("one", "tiny"))
    with pytest.raises(EmulatorControlError) as full:
        emu.control.connect(emu.token("two", "tiny"))
    assert full.value.status == 403


def test_same_identity_joining_again_replaces_the_first_session(emu, sink):
    first = emu.control.connect(emu.token("dup", "dups"))
    second = emu.control.connect(emu.token("dup", "dups"))
    assert first["sid"] != second["sid"]
    events = sink.wait_for(lambda ev: "participant_left" in [e["event"] for e in ev])
    left = next(e for e in events if e["event"] == "participant_left")
    assert left["participant"]["disconnectReason"] == "DUPLICATE_IDENTITY"


def test_room_closes_after_departure_timeout_when_the_last_participant_drops(emu, sink):
    emu.control.connect(emu.token("gone", "dropping"))
    emu.control.drop("dropping", "gone")
    assert rooms(emu) == ["dropping"]  # departure_timeout (1 s in these tests) not yet over
    wait_until(lambda: rooms(emu) == [], timeout=4)
    events = sink.wait_for(lambda ev: "room_finished" in [e["event"] for e in ev])
    left = next(e for e in events if e["event"] == "participant_left")
    assert left["participant"]["disconnectReason"] == "SIGNAL_CLOSE"


def test_rejoining_before_departure_timeout_keeps_the_room(emu):
    emu.control.connect(emu.token("back", "rejoin"))
    emu.control.disconnect("rejoin", "back")
    emu.control.connect(emu.token("back", "rejoin"))
    time.sleep(1.3)
    assert rooms(emu) == ["rejoin"]


def test_room_nobody_joins_closes_after_empty_timeout(emu):
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="lonely", empty_timeout=1)))
    assert rooms(emu) == ["lonely"]
    wait_until(lambda: rooms(emu) == [], timeout=4)


def test_publish_from_a_wav_file_reports_its_duration(emu, tmp_path: Path):
    import subprocess

    wav = tmp_path / "speech.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=0.5",
            "-ar",
            "16000",
            str(wav),
        ],
        check=True,
    )
    emu.control.connect(emu.token("w", "wav"))
    track = emu.control.publish("wav", "w", file=str(wav))
    assert track["duration"] == pytest.approx(0.5, abs=0.01)
    assert track["track"]["type"] == "AUDIO" and track["track"]["source"] == "MICROPHONE"
    with pytest.raises(EmulatorControlError) as missing:
        emu.control.publish("wav", "w", file=str(tmp_path / "nope.wav"))
    assert missing.value.status == 400
