"""A whole call over real HTTP and a real WebSocket, with LiveKit played by the emulator.

ScaiWave's ASGI app runs under uvicorn in a thread; the emulator posts its signed webhooks to
`/v1/calls/webhook` there, and the callee listens on `/v1/events`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.sync.client import connect as ws_connect

from calls.models import Call
from calls.tests.conftest import MEMBERS, make_room
from livekit_emulator.testing import free_port, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def scaiwave_server(livekit, monkeypatch) -> Iterator[str]:
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
    livekit.control.config(webhook_urls=[f"{base}/v1/calls/webhook"])
    yield base
    livekit.control.config(webhook_urls=[])
    server.should_exit = True
    thread.join(timeout=10)


def next_frame(ws: Any, type_: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == type_:
            return dict(frame)


def test_a_whole_call_from_invite_to_the_livekit_room_being_gone(acme, livekit, scaiwave_server):
    make_room(acme, "standup", MEMBERS)
    http = httpx.Client(base_url=scaiwave_server, timeout=10)
    alice = {"Authorization": f"Bearer {acme.user_token('alice', name='Alice')}"}
    bob_token = acme.user_token("bob", name="Bob")
    bob = {"Authorization": f"Bearer {bob_token}"}
    ws_url = scaiwave_server.replace("http://", "ws://") + f"/v1/events?access_token={bob_token}"

    with ws_connect(ws_url) as bob_ws:
        assert next_frame(bob_ws, "connected")["data"]["user_id"] == "bob"

        started = http.post("/v1/calls/initiate", json={"room_id": "standup", "type": "audio"}, headers=alice)
        assert started.status_code == 201, started.text
        ticket = started.json()["data"]
        call_id, room = ticket["call_id"], ticket["livekit_room"]

        invite = next_frame(bob_ws, "swp.call.invite")
        assert invite["data"]["call_id"] == call_id
        assert invite["data"]["initiator_id"] == "alice"
        assert invite["data"]["expires_at"]

        joined = http.post(f"/v1/calls/{call_id}/join", headers=bob)
        assert joined.status_code == 200, joined.text
        livekit.control.connect(ticket["livekit_token"])
        livekit.control.connect(joined.json()["data"]["livekit_token"])
        for identity in ("alice", "bob"):
            livekit.control.publish(room, identity, tone={"frequency": 440, "seconds": 2}, unpublish_on_end=False)

        def state() -> dict[str, Any]:
            response = http.get(f"/v1/calls/{call_id}", headers=alice)
            assert response.status_code == 200
            return dict(response.json()["data"])

        def both_talking() -> dict[str, Any] | None:
            current = state()
            people = {p["participant_id"]: p for p in current["participants"]}
            if set(people) == {"alice", "bob"} and all(p["audio_on"] for p in people.values()):
                return current
            return None

        talking = wait_until(both_talking, timeout=15)
        assert talking["status"] == "active"
        assert talking["started_at"] is not None
        assert next_frame(bob_ws, "swp.call.participant_joined")["data"]["call_id"] == call_id

        livekit.control.drop(room, "bob")

        def bob_left() -> dict[str, Any] | None:
            people = {p["participant_id"]: p for p in state()["participants"]}
            return people["bob"] if people["bob"]["left_at"] else None

        left = wait_until(bob_left, timeout=15)
        assert left["audio_on"] is False
        assert Call.objects.get(pk=call_id).participants.get(user__external_id="bob").leave_reason == "signal_close"
        assert state()["status"] == "active"  # alice is still connected

        ended = http.post(f"/v1/calls/{call_id}/end", headers=alice)
        assert ended.status_code == 200
        assert ended.json()["data"]["status"] == "ended"

        frame = next_frame(bob_ws, "swp.call.ended")
        assert frame["data"]["call_id"] == call_id
        assert frame["data"]["reason"] == "ended_by_user"

    def room_gone() -> bool:
        return room not in [r["name"] for r in livekit.control.state()["rooms"]]

    assert wait_until(room_gone, timeout=10)
    # LiveKit's room_finished for the deleted room arrives after the end and changes nothing.
    time.sleep(0.3)
    assert Call.objects.get(pk=call_id).end_reason == "ended_by_user"
