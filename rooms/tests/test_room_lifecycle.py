"""A Room outlives its LiveKit room: the room's own media session ends after its empty time-out, while
its members, and the calls that run in LiveKit rooms of their own, go on. Over real HTTP: the emulator
closes the empty room and sends its signed room_finished to the intake on a live server."""

from __future__ import annotations

from typing import Any

import pytest

from calls.models import Call
from livekit_emulator.testing import wait_until
from rooms.models import Room
from rooms.testing import wait_for_webhooks
from scaiwave.models import Event
from webhooks.models import LiveKitEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def webhooks_to_live_server(livekit, live_server):
    livekit.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    return livekit


def livekit_room_names(livekit: Any) -> list[str]:
    return [room["name"] for room in livekit.control.state()["rooms"]]


def test_a_room_with_a_call_outlives_its_own_empty_livekit_room(acme, webhooks_to_live_server):
    livekit = webhooks_to_live_server
    server = acme.server()
    assert server.post("/v1/rooms", {"name": "standup", "emptyTimeout": 2}, format="json").status_code == 201
    for user_id in ("alice", "bob", "carol"):
        assert server.put(f"/v1/rooms/standup/members/{user_id}", {"powerLevel": 50}, format="json").status_code == 201
    room = Room.objects.get(tenant=acme.tenant, name="standup")
    started = acme.user("alice").post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")
    assert started.status_code == 201, started.content
    ticket = started.json()["data"]
    joined = acme.user("bob").post(f"/v1/calls/{ticket['call_id']}/join")
    livekit.control.connect(ticket["livekit_token"])
    livekit.control.connect(joined.json()["data"]["livekit_token"])
    wait_until(lambda: Call.objects.get(pk=ticket["call_id"]).status == "active", 10)

    # Nobody joins the room's own LiveKit room: LiveKit closes it after its empty time-out.
    wait_until(lambda: room.livekit_name not in livekit_room_names(livekit), 15)
    wait_until(lambda: LiveKitEvent.objects.filter(event="room_finished", room_name=room.livekit_name).exists(), 10)
    wait_for_webhooks(livekit)

    room.refresh_from_db()
    assert room.is_open
    call = Call.objects.get(pk=ticket["call_id"])
    assert call.status == "active"
    assert ticket["livekit_room"] in livekit_room_names(livekit)
    assert not Event.objects.filter(type="room_closed").exists()
    assert server.get("/v1/rooms/standup").status_code == 200
    assert {m["userId"] for m in server.get("/v1/rooms/standup/members").json()["members"]} == {
        "alice",
        "bob",
        "carol",
    }

    assert acme.user("alice").post(f"/v1/calls/{call.pk}/end").status_code == 200
    again = acme.user("carol").post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")
    assert again.status_code == 201, again.content


@pytest.mark.usefixtures("webhooks_to_live_server")
def test_a_room_without_members_closes_with_its_livekit_room(acme):
    server = acme.server()
    assert server.post("/v1/rooms", {"name": "lobby", "emptyTimeout": 2}, format="json").status_code == 201
    room = Room.objects.get(tenant=acme.tenant, name="lobby")

    wait_until(lambda: Room.objects.get(pk=room.pk).closed_at is not None, 15)

    assert server.get("/v1/rooms/lobby").status_code == 404
    assert Event.objects.get(type="room_closed").data["reason"] == "finished"


def test_the_created_room_is_what_livekit_answered(acme, livekit):
    server = acme.server()

    created = server.post("/v1/rooms", {"name": "standup"}, format="json")

    assert created.status_code == 201
    body = created.json()
    fetched = server.get("/v1/rooms/standup").json()
    assert body["emptyTimeout"] == fetched["emptyTimeout"] == livekit.control.state()["config"]["empty_timeout"]
    assert body["creationTimeMs"] == fetched["creationTimeMs"] != "0"
    assert body["enabledCodecs"] == fetched["enabledCodecs"] != []
    assert body["sid"] == fetched["sid"]
    assert body["name"] == "standup"
