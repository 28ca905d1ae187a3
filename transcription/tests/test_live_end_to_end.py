"""Live transcription end to end: real HTTP, real WebSockets, LiveKit played by the emulator.

ScaiWave's ASGI app runs under uvicorn in a thread of the test process (pytest-django's `live_server` serves HTTP
only; the ingest is a WebSocket). Being in-process, it shares the test database settings and the session's tiny.en
model. The emulator posts its signed webhooks to `/v1/calls/webhook` there, and streams the track egress to
`/v1/ingest/audio` there; a room member listens on `/v1/events`.
"""

from __future__ import annotations

import json
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from websockets.sync.client import connect as ws_connect

from livekit_emulator.testing import EmulatorProcess, free_port, wait_until
from rooms import livekit_gateway as gateway
from rooms.models import Room, RoomMember
from rooms.testing import livekit, livekit_emulator  # noqa: F401
from transcription.live.services import _transcription_of_egress
from transcription.tests.conftest import espeak, normalise
from transcription.tests.live_audio import pcm48k, silence48k

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FIRST = "The weather is sunny and warm today."
SECOND = "Good morning everyone, the release is ready."


@pytest.fixture
def scaiwave_server(livekit: EmulatorProcess, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    from django.db import connection

    from scaiwave.asgi import application

    # Server threads close their connections after each request, so the test database can be dropped.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    # channels_redis binds its layer to the first event loop that receives on it; a server's loop that stopped
    # mid-receive would make the next server's /v1/events fail ("Two event loops..."), so each gets a fresh layer.
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10)
    base = f"http://127.0.0.1:{port}"
    settings.PUBLIC_BASE_URL = base  # where LiveKit's egress dials the ingest WebSocket (ws://)
    settings.TRANSCRIPTION_LIVE_INGEST_URL = ""
    livekit.control.config(webhook_urls=[f"{base}/v1/calls/webhook"], speed=1.0)  # audio plays in real time
    yield base
    livekit.control.config(webhook_urls=[])
    server.should_exit = True
    thread.join(timeout=10)
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture(scope="module")
def speech_wav(speech_dir: Path) -> Path:
    """Two sentences with a pause between them, as a 48 kHz WAV the emulator publishes."""
    pcm = (
        pcm48k(espeak(speech_dir / "e2e-first.wav", FIRST))
        + silence48k(1.0)
        + pcm48k(espeak(speech_dir / "e2e-second.wav", SECOND))
    )
    path = speech_dir / "e2e-speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(pcm)
    return path


def test_segments_arrive_on_the_events_websocket_while_the_speaker_talks(
    acme,
    livekit: EmulatorProcess,  # noqa: F811
    scaiwave_server: str,
    speech_wav: Path,
    stt_engine: Any,
) -> None:
    assert acme.server().post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201
    room = Room.objects.get(tenant=acme.tenant, name="standup")
    RoomMember.objects.create(room=room, user=acme.user_row("bob", name="Bob"), power_level=0)
    ws_url = scaiwave_server.replace("http://", "ws://") + f"/v1/events?access_token={acme.user_token('bob')}"

    with ws_connect(ws_url) as events:
        assert json.loads(events.recv(timeout=10))["type"] == "connected"
        events.send(json.dumps({"action": "subscribe", "room_id": "standup"}))
        assert json.loads(events.recv(timeout=10))["type"] == "subscribed"

        started = acme.server().post(
            "/v1/rooms/standup/transcription/start",
            {"participants": {"alice": "Alice Liddell"}, "options": {"partialResults": True}},
            format="json",
        )
        assert started.status_code == 201, started.json()
        transcription_id = started.json()["transcriptionId"]

        # Alice joins and speaks after the session started: LiveKit's track_published webhook starts her egress.
        token = (
            acme.server()
            .post(
                "/v1/token",
                {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"},
                format="json",
            )
            .json()["token"]
        )
        livekit.control.connect(token)
        published = livekit.control.publish(room.livekit_name, "alice", file=speech_wav, delay_seconds=1.0)
        plays_until = time.monotonic() + 1.0 + float(published["duration"])

        finals: list[tuple[float, dict[str, Any]]] = []
        partials: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(finals) < 2 and time.monotonic() < deadline:
            try:
                frame = json.loads(events.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            if frame["type"] != "transcription.segment":
                continue
            if frame["data"]["final"]:
                finals.append((time.monotonic(), frame["data"]))
            else:
                partials.append(frame["data"])

    assert len(finals) == 2, f"finals: {finals}, partials: {partials}"
    first_at, first = finals[0]
    assert first_at < plays_until, "the first sentence's segment came only after the speaker finished"
    assert "weather is sunny and warm" in normalise(first["text"])
    assert "release is ready" in normalise(finals[1][1]["text"])
    assert {f["speaker"] for _, f in finals} == {"Alice Liddell"}
    assert {f["speakerLabel"] for _, f in finals} == {"alice"}
    assert {f["trackSid"] for _, f in finals} == {published["sid"]}
    assert all(f["transcriptionId"] == transcription_id and f["roomId"] == "standup" for _, f in finals)
    # Any partial result of an utterance came before its final segment.
    final_ids = [f["utteranceId"] for _, f in finals]
    assert all(p["utteranceId"] in final_ids or p["utteranceId"].endswith("-2") for p in partials)

    stopped = acme.server().post("/v1/rooms/standup/transcription/stop")
    assert stopped.status_code == 200
    listed = acme.server().get("/v1/rooms/standup/transcription").json()
    assert stopped.json()["segmentCount"] == len(listed["segments"]) == 2
    assert listed["status"] == "stopped" and listed["health"] == "ok"

    # Stopping stopped the session's egress in LiveKit.
    def ours_running() -> list[str]:
        return [
            info.egress_id
            for info in gateway.egress_list(room_name=room.livekit_name, active=True)
            if _transcription_of_egress(info) is not None
        ]

    wait_until(lambda: not ours_running(), timeout=10)


def test_the_ingest_websocket_refuses_a_bad_token(scaiwave_server: str) -> None:
    from websockets.exceptions import InvalidStatus

    url = scaiwave_server.replace("http://", "ws://") + "/v1/ingest/audio?token=forged.token"
    with pytest.raises(InvalidStatus) as refused, ws_connect(url):
        pass
    assert refused.value.response.status_code == 403


@pytest.fixture(scope="module")
def sentence_wavs(speech_dir: Path) -> tuple[Path, Path]:
    """FIRST and SECOND as two 48 kHz WAVs, one for each speaker of a call."""
    paths = []
    for stem, text in (("call-first", FIRST), ("call-second", SECOND)):
        path = speech_dir / f"{stem}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(48_000)
            out.writeframes(pcm48k(espeak(speech_dir / f"{stem}-tts.wav", text)))
        paths.append(path)
    return paths[0], paths[1]


def test_a_rooms_live_call_is_transcribed_for_every_speaker_in_the_calls_livekit_room(
    acme,
    livekit: EmulatorProcess,  # noqa: F811
    scaiwave_server: str,
    sentence_wavs: tuple[Path, Path],
    stt_engine: Any,
) -> None:
    bob_wav, alice_wav = sentence_wavs
    assert acme.server().post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201
    room = Room.objects.get(tenant=acme.tenant, name="standup")
    for sub, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")):
        RoomMember.objects.create(room=room, user=acme.user_row(sub, name=name), power_level=0)
    initiated = acme.user("alice").post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")
    assert initiated.status_code == 201, initiated.json()
    ticket = initiated.json()["data"]
    call_room = ticket["livekit_room"]
    assert call_room != room.livekit_name  # the call talks in its own LiveKit room
    joined = acme.user("bob").post(f"/v1/calls/{ticket['call_id']}/join")
    assert joined.status_code == 200, joined.json()
    livekit.control.connect(ticket["livekit_token"])
    livekit.control.connect(joined.json()["data"]["livekit_token"])
    ws_url = scaiwave_server.replace("http://", "ws://") + f"/v1/events?access_token={acme.user_token('carol')}"

    with ws_connect(ws_url) as events:
        assert json.loads(events.recv(timeout=10))["type"] == "connected"
        events.send(json.dumps({"action": "subscribe", "room_id": "standup"}))
        assert json.loads(events.recv(timeout=10))["type"] == "subscribed"

        # Bob's track is in the call's LiveKit room before the session starts: starting it finds that track.
        bob_track = livekit.control.publish(call_room, "bob", file=bob_wav, delay_seconds=2.0)
        started = acme.server().post(
            "/v1/rooms/standup/transcription/start", {"participants": {"alice": "Alice Liddell"}}, format="json"
        )
        assert started.status_code == 201, started.json()
        transcription_id = started.json()["transcriptionId"]
        # Alice publishes after it started, once Bob is done: the call room's track_published starts her egress.
        alice_track = livekit.control.publish(
            call_room, "alice", file=alice_wav, delay_seconds=2.0 + float(bob_track["duration"]) + 1.0
        )

        finals: list[dict[str, Any]] = []
        deadline = time.monotonic() + 45
        while len(finals) < 2 and time.monotonic() < deadline:
            try:
                frame = json.loads(events.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            if frame["type"] == "transcription.segment" and frame["data"]["final"]:
                finals.append(frame["data"])

    by_speaker = {f["speakerLabel"]: f for f in finals}
    assert set(by_speaker) == {"bob", "alice"}, f"finals: {finals}"
    assert "weather is sunny and warm" in normalise(by_speaker["bob"]["text"])
    assert by_speaker["bob"]["trackSid"] == bob_track["sid"]
    assert "release is ready" in normalise(by_speaker["alice"]["text"])
    assert by_speaker["alice"]["trackSid"] == alice_track["sid"]
    assert by_speaker["alice"]["speaker"] == "Alice Liddell"
    assert all(f["transcriptionId"] == transcription_id and f["roomId"] == "standup" for f in finals)

    # Stopping the session stops its egresses in the call's LiveKit room too.
    assert acme.server().post("/v1/rooms/standup/transcription/stop").status_code == 200

    def ours_running() -> list[str]:
        return [
            info.egress_id
            for info in gateway.egress_list(room_name=call_room, active=True)
            if _transcription_of_egress(info) is not None
        ]

    wait_until(lambda: not ours_running(), timeout=10)
