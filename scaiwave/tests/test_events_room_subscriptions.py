"""`/v1/events` room subscriptions: one room's frames reach that room's current members, nobody else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from rooms.models import Room
from rooms.services import member_remove, member_set, room_close
from scaiwave.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _room(creds, name: str, *members: str) -> Room:
    room = Room.objects.create(tenant=creds.tenant, name=name, livekit_name=Room.livekit_name_for(creds.tenant, name))
    for member in members:
        member_set(room=room, external_id=member, power_level=0)
    return room


def _close(room: Room) -> None:
    with transaction.atomic():
        room_close(room=room, reason="deleted")


async def _subscribed(creds, sub: str, room_id: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/v1/events?access_token={creds.user_token(sub)}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "connected"
    await communicator.send_json_to({"action": "subscribe", "room_id": room_id})
    assert await communicator.receive_json_from(timeout=5) == {"type": "subscribed", "data": {"room_id": room_id}}
    return communicator


@pytest.mark.parametrize(
    ("mine", "other"),
    [("board 1", "board_1"), ("x" * 120 + "-alpha", "x" * 120 + "-bravo")],
    ids=["sanitised-alike", "long-common-prefix"],
)
async def test_rooms_whose_names_look_alike_never_share_frames(acme, mine, other):
    await sync_to_async(_room)(acme, mine, "alice")
    theirs = await sync_to_async(_room)(acme, other, "bob")
    alice = await _subscribed(acme, "alice", mine)
    await sync_to_async(_close)(theirs)  # room_closed goes to bob and to subscribers of the other room
    assert await alice.receive_nothing(timeout=0.5)
    await alice.disconnect()


async def test_a_subscriber_still_receives_its_own_rooms_frames(acme):
    room = await sync_to_async(_room)(acme, "board 1", "alice", "bob")
    bob = await _subscribed(acme, "bob", "board 1")
    await sync_to_async(member_remove)(room=room, external_id="alice", actor="server")  # bob stays subscribed
    await sync_to_async(_close)(room)
    frames = [await bob.receive_json_from(timeout=5) for _ in range(2)]  # as member and as subscriber
    assert {frame["type"] for frame in frames} >= {"room_closed"}
    await bob.disconnect()


async def test_a_removed_member_stops_receiving_the_rooms_frames(acme):
    room = await sync_to_async(_room)(acme, "standup", "alice", "bob")
    alice = await _subscribed(acme, "alice", "standup")
    await sync_to_async(member_remove)(room=room, external_id="alice", actor="server")
    # The room's own `member_removed` event (the audit trail) still reaches her, then the subscription ends.
    frames = {frame["type"]: frame for frame in [await alice.receive_json_from(timeout=5) for _ in range(2)]}
    assert frames["member_removed"]["data"]["id"] == "alice"
    assert frames["unsubscribed"]["data"] == {"room_id": "standup", "reason": "member_removed"}
    await sync_to_async(_close)(room)  # alice is no longer a member: not a recipient, and no longer a subscriber
    assert await alice.receive_nothing(timeout=0.5)
    await alice.disconnect()


async def test_a_closed_room_drops_its_subscribers_and_a_new_room_of_that_name_is_not_theirs(acme):
    old = await sync_to_async(_room)(acme, "standup", "alice")
    alice = await _subscribed(acme, "alice", "standup")
    await sync_to_async(_close)(old)
    closed = [await alice.receive_json_from(timeout=5) for _ in range(3)]
    assert [frame["type"] for frame in closed].count("room_closed") == 2  # as member, and as subscriber
    assert {"type": "unsubscribed", "data": {"room_id": "standup", "reason": "room_closed"}} in closed
    new = await sync_to_async(_room)(acme, "standup", "bob")
    await sync_to_async(_close)(new)
    assert await alice.receive_nothing(timeout=0.5)
    await alice.disconnect()
