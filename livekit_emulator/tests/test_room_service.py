"""RoomService driven by the unmodified livekit-api Python client (protobuf transport), plus raw Twirp checks."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from livekit import api
from livekit.protocol import models
from livekit.protocol import room as rm

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

ID = re.compile(r"^[A-Z]{2}_[2-9A-HJ-NP-Za-km-z]{12}$")


def join(emu, identity: str, room: str, **grants) -> dict:
    return emu.control.connect(emu.token(identity, room, **grants))


def test_create_room_is_idempotent_keeps_sid_and_fires_room_started_once(emu, sink):
    first = lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="standup", empty_timeout=60)))
    again = lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="standup", metadata="m1")))

    assert ID.match(first.sid) and first.sid.startswith("RM_")
    assert again.sid == first.sid
    assert (again.empty_timeout, again.departure_timeout, again.metadata) == (60, 1, "m1")
    assert abs(first.creation_time - dt.datetime.now().timestamp()) < 5  # seconds, not ms
    sink.wait_for(lambda events: [e["event"] for e in events] == ["room_started"])


def test_list_rooms_returns_all_or_the_named_ones(emu):
    for name in ("a", "b", "c"):
        lk(emu, lambda c, n=name: c.room.create_room(rm.CreateRoomRequest(name=n)))

    everything = lk(emu, lambda c: c.room.list_rooms(rm.ListRoomsRequest()))
    some = lk(emu, lambda c: c.room.list_rooms(rm.ListRoomsRequest(names=["a", "c", "zzz"])))

    assert sorted(r.name for r in everything.rooms) == ["a", "b", "c"]
    assert sorted(r.name for r in some.rooms) == ["a", "c"]


def test_participant_rpcs_read_and_change_a_connected_participant(emu):
    joined = join(emu, "alice", "ops", name="ignored")  # grants kwargs go to VideoGrants
    assert joined["sid"].startswith("PA_")
    track = emu.control.publish("ops", "alice", kind="audio", unpublish_on_end=False)

    listed = lk(emu, lambda c: c.room.list_participants(rm.ListParticipantsRequest(room="ops")))
    assert [p.identity for p in listed.participants] == ["alice"]
    alice = lk(emu, lambda c: c.room.get_participant(rm.RoomParticipantIdentity(room="ops", identity="alice")))
    assert alice.state == models.ParticipantInfo.ACTIVE and alice.is_publisher
    assert [t.sid for t in alice.tracks] == [track["sid"]]

    updated = lk(
        emu,
        lambda c: c.room.update_participant(
            rm.UpdateParticipantRequest(
                room="ops", identity="alice", name="Alice", metadata='{"x":1}', attributes={"role": "host"}
            )
        ),
    )
    assert (updated.name, updated.metadata, dict(updated.attributes)) == ("Alice", '{"x":1}', {"role": "host"})
    updated = lk(
        emu,
        lambda c: c.room.update_participant(
            rm.UpdateParticipantRequest(
                room="ops",
                identity="alice",
                attributes={"role": "", "team": "red"},
                permission=models.ParticipantPermission(can_subscribe=True, can_publish=False),
            )
        ),
    )
    assert updated.name == "Alice"  # empty name means no change
    assert dict(updated.attributes) == {"team": "red"}  # "" deletes a key, others merge
    assert not updated.permission.can_publish

    muted = lk(
        emu,
        lambda c: c.room.mute_published_track(
            rm.MuteRoomTrackRequest(room="ops", identity="alice", track_sid=track["sid"], muted=True)
        ),
    )
    assert muted.track.muted
    with pytest.raises(api.TwirpError) as unmute:
        lk(
            emu,
            lambda c: c.room.mute_published_track(
                rm.MuteRoomTrackRequest(room="ops", identity="alice", track_sid=track["sid"], muted=False)
            ),
        )
    assert (unmute.value.code, unmute.value.status, unmute.value.message) == (
        "failed_precondition",
        412,
        "remote unmute not enabled",
    )

    lk(
        emu,
        lambda c: c.room.update_subscriptions(
            rm.UpdateSubscriptionsRequest(room="ops", identity="alice", track_sids=[track["sid"]], subscribe=True)
        ),
    )
    lk(emu, lambda c: c.room.send_data(rm.SendDataRequest(room="ops", data=b"hello", topic="chat")))
    room = lk(emu, lambda c: c.room.update_room_metadata(rm.UpdateRoomMetadataRequest(room="ops", metadata="new")))
    assert room.metadata == "new" and room.num_participants == 1 and room.num_publishers == 1

    state = emu.control.state()
    assert state["rooms"][0]["data_packets"][0]["topic"] == "chat"

    lk(emu, lambda c: c.room.remove_participant(rm.RoomParticipantIdentity(room="ops", identity="alice")))
    with pytest.raises(api.TwirpError) as gone:
        lk(emu, lambda c: c.room.get_participant(rm.RoomParticipantIdentity(room="ops", identity="alice")))
    assert (gone.value.code, gone.value.status) == ("not_found", 404)


def test_delete_room_disconnects_everyone_and_fires_room_finished(emu, sink):
    join(emu, "bob", "war-room")
    lk(emu, lambda c: c.room.delete_room(rm.DeleteRoomRequest(room="war-room")))

    events = sink.wait_for(lambda ev: "room_finished" in [e["event"] for e in ev])
    left = next(e for e in events if e["event"] == "participant_left")
    assert left["participant"]["disconnectReason"] == "ROOM_DELETED"
    assert lk(emu, lambda c: c.room.list_rooms(rm.ListRoomsRequest())).rooms == []


def test_delete_unknown_room_is_not_found_404(emu):
    with pytest.raises(api.TwirpError) as error:
        lk(emu, lambda c: c.room.delete_room(rm.DeleteRoomRequest(room="nope")))
    assert (error.value.code, error.value.status, error.value.message) == (
        "not_found",
        404,
        "requested room does not exist",
    )


def test_list_participants_of_unknown_room_is_empty(emu):
    assert list(lk(emu, lambda c: c.room.list_participants(rm.ListParticipantsRequest(room="x"))).participants) == []


def test_missing_grant_is_json_unauthenticated_401(emu):
    token = (
        api.AccessToken(emu.api_key, emu.api_secret)
        .with_grants(api.VideoGrants(room_list=True, room_admin=True, room="other"))
        .to_jwt()
    )

    async def create(_: api.LiveKitAPI):
        async with api.LiveKitAPI.with_token(token, emu.url) as client:
            return await client.room.create_room(rm.CreateRoomRequest(name="x"))

    async def admin_other_room(_: api.LiveKitAPI):
        async with api.LiveKitAPI.with_token(token, emu.url) as client:
            return await client.room.list_participants(rm.ListParticipantsRequest(room="mine"))

    for call in (create, admin_other_room):
        with pytest.raises(api.TwirpError) as error:
            lk(emu, call)
        assert (error.value.code, error.value.status, error.value.message) == (
            "unauthenticated",
            401,
            "permissions denied",
        )


def test_bad_token_is_a_plain_text_401_that_the_sdk_reports_as_unknown(emu):
    with pytest.raises(api.TwirpError) as error:
        lk(emu, lambda c: c.room.list_rooms(rm.ListRoomsRequest()), secret="wrong-secret")
    assert (error.value.code, error.value.status, error.value.message) == ("unknown", 401, "")

    with pytest.raises(api.TwirpError) as unknown_key:
        lk(emu, lambda c: c.room.list_rooms(rm.ListRoomsRequest()), key="nobody")
    assert (unknown_key.value.code, unknown_key.value.status) == ("unknown", 401)


def test_auth_layer_answers_plain_text_and_routes_answer_twirp_json(emu):
    url = emu.url + "/twirp/livekit.RoomService/ListRooms"
    headers = {"Content-Type": "application/json"}
    basic = httpx.post(url, headers={**headers, "Authorization": "Basic abc"}, content=b"{}")
    assert basic.status_code == 401 and basic.headers["content-type"].startswith("text/plain")
    assert basic.text.strip() == "invalid authorization header. Must start with Bearer"

    unknown = httpx.post(url, headers={**headers, "Authorization": "Bearer not-a-jwt"}, content=b"{}")
    assert (unknown.status_code, unknown.text.strip()) == (401, "invalid authorization token")

    anonymous = httpx.post(url, headers=headers, content=b"{}")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/json"
    assert anonymous.json() == {"code": "unauthenticated", "msg": "permissions denied"}

    token = api.AccessToken(emu.api_key, emu.api_secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    by_query = httpx.post(url, params={"access_token": token}, headers=headers, content=b"{}")
    assert by_query.status_code == 200 and by_query.json() == {"rooms": []}

    bearer = {"Authorization": f"Bearer {token}"}
    route = httpx.post(emu.url + "/twirp/livekit.RoomService/Nope", headers={**headers, **bearer}, content=b"{}")
    assert route.status_code == 404 and route.json()["code"] == "bad_route"
    wrong_verb = httpx.get(url, headers=bearer)
    assert wrong_verb.status_code == 404 and wrong_verb.json()["code"] == "bad_route"
    wrong_type = httpx.post(url, headers={"Content-Type": "text/xml", **bearer}, content=b"{}")
    assert wrong_type.status_code == 404 and "unexpected Content-Type" in wrong_type.json()["msg"]
    malformed = httpx.post(url, headers={"Content-Type": "application/protobuf", **bearer}, content=b"\xff\xff")
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed"

    health = httpx.get(emu.url + "/")
    assert (health.status_code, health.text) == (200, "OK")


def test_json_replies_use_snake_case_with_defaults_and_int64_strings(emu):
    token = api.AccessToken(emu.api_key, emu.api_secret).with_grants(api.VideoGrants(room_create=True)).to_jwt()
    reply = httpx.post(
        emu.url + "/twirp/livekit.RoomService/CreateRoom",
        headers={"Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {token}"},
        json={"name": "json-room", "emptyTimeout": 30},
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["empty_timeout"] == 30 and body["max_participants"] == 0 and body["metadata"] == ""
    assert isinstance(body["creation_time"], str) and body["num_participants"] == 0


def test_send_data_refuses_a_nonce_that_is_not_16_bytes(emu):
    lk(emu, lambda c: c.room.create_room(rm.CreateRoomRequest(name="data")))
    token = (
        api.AccessToken(emu.api_key, emu.api_secret).with_grants(api.VideoGrants(room_admin=True, room="data")).to_jwt()
    )
    reply = httpx.post(
        emu.url + "/twirp/livekit.RoomService/SendData",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        json={"room": "data", "data": "aGk=", "nonce": "AAEC"},
    )
    assert reply.status_code == 400 and reply.json()["code"] == "invalid_argument"
