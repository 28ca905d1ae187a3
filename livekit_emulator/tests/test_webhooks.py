"""Webhooks: LiveKit's wire format (accepted by WebhookReceiver), per-key FIFO, retries, drops and faults."""

from __future__ import annotations

import base64
import hashlib
import time

import jwt
import pytest
from livekit import api
from livekit.protocol import room as rm

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def receiver(key: str = "devkey", secret: str = "secret") -> api.WebhookReceiver:  # noqa: S107 - dev secret
    return api.WebhookReceiver(api.TokenVerifier(key, secret))


def test_webhooks_are_accepted_by_the_python_webhook_receiver(emu, sink):
    emu.control.connect(emu.token("alice", "hooks"))
    sink.wait_for(lambda ev: [e["event"] for e in ev] == ["room_started", "participant_joined"])

    request = sink.requests[1]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/webhook+json"
    assert headers["user-agent"] == "LiveKit"
    assert not headers["authorization"].startswith("Bearer ")
    claims = jwt.decode(headers["authorization"], "secret", algorithms=["HS256"])
    assert claims["iss"] == "devkey" and claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(request["body"]).digest()).decode()

    event = receiver().receive(request["body"].decode(), headers["authorization"])
    assert event.event == "participant_joined" and event.participant.identity == "alice"
    assert event.id.startswith("EV_") and len(event.id) == 15
    assert abs(event.created_at - time.time()) < 10  # seconds
    raw = sink.events()[1]
    assert "joinedAt" in raw["participant"] and isinstance(raw["participant"]["joinedAt"], str)  # int64 string
    assert "isPublisher" not in raw["participant"]  # defaults omitted


def test_tampered_body_or_wrong_key_is_rejected(emu, sink):
    emu.control.connect(emu.token("bob", "tamper"))
    sink.wait_for(lambda ev: len(ev) == 2)
    request = sink.requests[1]
    token = request["headers"]["Authorization"]
    body = request["body"].decode()

    with pytest.raises(Exception, match="hash mismatch"):
        receiver().receive(body.replace("bob", "eve"), token)
    with pytest.raises(jwt.InvalidIssuerError):
        receiver("otherkey", "secret").receive(body, token)
    with pytest.raises(jwt.InvalidSignatureError):
        receiver("devkey", "not-the-secret").receive(body, token)


def test_events_of_one_room_arrive_in_order(emu, sink):
    emu.control.connect(emu.token("a", "order"))
    emu.control.publish("order", "a", kind="video", source="camera")
    emu.control.disconnect("order", "a")
    events = sink.wait_for(lambda ev: "room_finished" in [e["event"] for e in ev], timeout=5)
    assert [e["event"] for e in events] == [
        "room_started",
        "participant_joined",
        "track_published",
        "track_unpublished",
        "participant_left",
        "room_finished",
    ]
    left = events[4]["participant"]
    assert left["disconnectReason"] == "CLIENT_INITIATED"
    assert set(events[2]["participant"]) == {"sid", "identity"}  # track events carry a participant reference


def test_5xx_and_429_are_retried_but_4xx_and_501_are_final(emu, sink):
    sink.statuses = [503, 429, 200]
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="retry-1")))
    sink.wait_for(lambda ev: len(ev) == 3)
    assert {e["id"] for e in sink.events()} == {sink.events()[0]["id"]}  # the same event, three attempts

    sink.statuses = [400]
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="retry-2")))
    sink.statuses = [501]
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="retry-3")))
    time.sleep(0.5)
    assert len(sink.events()) == 5
    assert emu.control.state()["webhooks"]["sent"] == 3


def test_an_event_is_dropped_after_five_failed_attempts(emu, sink):
    sink.statuses = [500] * 5
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="doomed")))
    sink.wait_for(lambda ev: len(ev) == 5)
    time.sleep(0.3)
    assert len(sink.events()) == 5
    webhooks = emu.control.state()["webhooks"]
    assert webhooks["failed"] == 1 and webhooks["log"][-1]["attempts"] == 5


def test_events_waiting_longer_than_max_age_are_dropped(emu, sink):
    emu.control.config(webhook_max_age=0.2)
    emu.control.faults(webhook={"delay_ms": 400})
    emu.control.connect(emu.token("late", "aging"))  # room_started then participant_joined, same room queue
    time.sleep(1.2)
    assert sink.names() == ["room_started"]
    assert emu.control.state()["webhooks"]["dropped"] == 1


def test_drop_rate_fault_drops_events(emu, sink):
    emu.control.faults(webhook={"drop_rate": 1.0})
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="silent")))
    time.sleep(0.3)
    assert sink.events() == []
    assert emu.control.state()["webhooks"]["dropped"] == 1


def test_duplicate_fault_sends_identical_copies(emu, sink):
    emu.control.faults(webhook={"duplicate": 2})
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="twice")))
    sink.wait_for(lambda ev: len(ev) == 3)
    bodies = {r["body"] for r in sink.requests}
    assert len(bodies) == 1  # same bytes, same event id


def test_reorder_fault_delivers_queued_events_out_of_order(emu, sink):
    emu.control.faults(webhook={"reorder": True, "reorder_window_ms": 200})
    emu.control.connect(emu.token("r", "shuffle"))
    emu.control.publish("shuffle", "r", kind="video", source="camera")
    events = sink.wait_for(lambda ev: len(ev) == 3)
    names = [e["event"] for e in events]
    assert sorted(names) == ["participant_joined", "room_started", "track_published"]
    assert names != ["room_started", "participant_joined", "track_published"]
    for request in sink.requests:  # every copy is still correctly signed
        receiver().receive(request["body"].decode(), request["headers"]["Authorization"])
