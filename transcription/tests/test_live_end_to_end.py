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
