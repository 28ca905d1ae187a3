"""rooms_reconcile (the beat task): the mirror converges to LiveKit's ListRooms/ListParticipants."""

from __future__ import annotations

import pytest

from rooms import livekit_gateway
from rooms.models import Room, RoomParticipant
from rooms.tasks import reconcile_livekit

pytestmark = pytest.mark.django_db


def join(creds, livekit, identity, room="standup"):
    token = creds.server().post(
        "/v1/token", {"roomId": room, "userId": identity, "name": identity, "role": "participant"}, format="json"
    )
    return livekit.control.connect(token.json()["token"])


def connected(room):
    return set(RoomParticipant.objects.filter(room=room, state="joined").values_list("identity", flat=True))


def test_missed_joins_appear_and_ghosts_disappear(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    room = Room.objects.get(name="standup")
    join(acme, livekit, "alice")
    join(acme, livekit, "bob")
    RoomParticipant.objects.create(room=room, sid="PA_ghost", identity="ghost", joined_at=room.created_at)

    result = reconcile_livekit()

    assert connected(room) == {"alice", "bob"}
    assert result["joined"] == 2 and result["left"] == 1
    livekit.control.disconnect(room.livekit_name, "bob")

    reconcile_livekit()

    assert connected(room) == {"alice"}


def test_reconcile_twice_changes_nothing_the_second_time(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    join(acme, livekit, "alice")
    reconcile_livekit()

    again = reconcile_livekit()

    assert (again["joined"], again["left"], again["rooms_closed"]) == (0, 0, 0)


def test_a_room_livekit_finished_without_telling_us_is_closed(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    room = Room.objects.get(name="standup")
    from livekit_emulator.testing import wait_until

    livekit.control.config(empty_timeout=0)
    from rooms import livekit_gateway

    livekit_gateway.room_delete(room.livekit_name)  # behind ScaiWave's back, no webhook configured
    wait_until(lambda: not livekit.control.state()["rooms"], timeout=5)

    result = reconcile_livekit()

    room.refresh_from_db()
    assert room.closed_at is not None
    assert result["rooms_closed"] == 1


def test_a_room_with_members_whose_livekit_room_finished_unreported_stays_open_between_sessions(acme, livekit):
    server = acme.server()
    server.post("/v1/rooms", {"name": "standup"}, format="json")
    server.put("/v1/rooms/standup/members/bob", {"powerLevel": 50}, format="json")
    room = Room.objects.get(name="standup")
    sid = room.livekit_sid
    livekit_gateway.room_delete(room.livekit_name)  # behind ScaiWave's back, no webhook configured

    result = reconcile_livekit()

    room.refresh_from_db()
    assert room.is_open and result["rooms_closed"] == 0
    assert (room.livekit_sid, room.livekit_finished_sid) == ("", sid)
    join(acme, livekit, "alice")
    reconcile_livekit()
    room.refresh_from_db()
    assert room.livekit_sid not in ("", sid)
    assert connected(room) == {"alice"}


def test_a_livekit_room_joined_through_a_token_only_is_adopted(acme, livekit):
    join(acme, livekit, "alice", room="adhoc")

    result = reconcile_livekit()

    room = Room.objects.get(tenant=acme.tenant, name="adhoc")
    assert result["rooms_adopted"] == 1
    assert connected(room) == {"alice"}
    assert acme.server().get("/v1/rooms/adhoc").status_code == 200


def test_reconcile_when_livekit_is_down_raises_and_changes_nothing(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    livekit.control.faults(mode="error")
    from rooms.livekit_gateway import LiveKitError

    with pytest.raises(LiveKitError):
        reconcile_livekit()

    assert Room.objects.get(name="standup").is_open
