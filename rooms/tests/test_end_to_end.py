"""The whole loop over real HTTP: ScaiWave mints a token, the emulator connects that participant,
LiveKit's webhook reaches ScaiWave's intake on a live server, and a kick goes all the way round."""

from __future__ import annotations

import pytest

from livekit_emulator.testing import wait_until
from rooms.models import Room, RoomParticipant
from rooms.testing import wait_for_webhooks
from scaiwave.models import Event
from webhooks.models import LiveKitEvent


@pytest.fixture
def webhooks_to_live_server(livekit, live_server):
    livekit.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    return livekit


@pytest.mark.django_db(transaction=True)
def test_create_token_join_webhook_list_kick_webhook_gone(acme, webhooks_to_live_server):
    livekit = webhooks_to_live_server
    server = acme.server()
    assert server.post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201
    room = Room.objects.get(tenant=acme.tenant, name="standup")
    token = server.post(
        "/v1/token", {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "host"}, format="json"
    ).json()["token"]

    livekit.control.connect(token)

    wait_until(lambda: RoomParticipant.objects.filter(room=room, identity="alice", state="joined").exists(), 10)
    listed = server.get("/v1/rooms/standup/participants").json()["participants"]
    assert [p["identity"] for p in listed] == ["alice"]
    assert Event.objects.filter(type="participant_joined", data__participantId="alice").count() == 1

    assert server.delete("/v1/rooms/standup/participants/alice").status_code == 204

    wait_until(lambda: RoomParticipant.objects.filter(room=room, identity="alice", state="left").exists(), 10)
    assert server.get("/v1/rooms/standup/participants").json()["participants"] == []
    assert Event.objects.filter(type="participant_left", data__participantId="alice").count() == 1
    refresh = server.post(
        "/v1/token/refresh", {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "host"}, format="json"
    )
    assert refresh.status_code == 403
    wait_for_webhooks(livekit)
    outcomes = set(LiveKitEvent.objects.values_list("outcome", flat=True))
    assert outcomes <= {"applied", "stale"}, outcomes
