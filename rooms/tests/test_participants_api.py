"""Participants: list, kick and mute, checked against the LiveKit emulator's own state."""

from __future__ import annotations

import pytest

from rooms.models import RoomBan

pytestmark = pytest.mark.django_db


def join(creds, livekit, identity, *, room="standup", role="participant"):
    token = creds.server().post(
        "/v1/token", {"roomId": room, "userId": identity, "name": identity.title(), "role": role}, format="json"
    )
    return livekit.control.connect(token.json()["token"])


def emulator_participants(livekit, livekit_name):
    for room in livekit.control.state()["rooms"]:
        if room["name"] == livekit_name:
            return {p["identity"]: p for p in room["participants"]}
    return {}


@pytest.fixture
def room(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    from rooms.models import Room

    return Room.objects.get(tenant=acme.tenant, name="standup")


def test_list_participants_shows_who_livekit_has_in_the_room(acme, livekit, room):
    join(acme, livekit, "alice")
    join(acme, livekit, "bob")

    response = acme.server().get("/v1/rooms/standup/participants")

    assert response.status_code == 200
    people = {p["identity"]: p for p in response.json()["participants"]}
    assert set(people) == {"alice", "bob"}
    assert people["alice"]["name"] == "Alice"
    assert people["alice"]["sid"].startswith("PA_")


def test_list_participants_of_an_empty_room_is_empty(acme, livekit, room):
    assert acme.server().get("/v1/rooms/standup/participants").json() == {"participants": []}


def test_kick_removes_the_participant_from_livekit_and_bans_a_refresh(acme, livekit, room, settings):
    settings.LIVEKIT_KICK_BAN_SECONDS = 60
    join(acme, livekit, "alice")
    join(acme, livekit, "bob")

    response = acme.server().delete("/v1/rooms/standup/participants/alice")

    assert response.status_code == 204
    assert set(emulator_participants(livekit, room.livekit_name)) == {"bob"}
    ban = RoomBan.objects.get(tenant=acme.tenant, room_name="standup", identity="alice")
    assert 55 < (ban.until - ban.created_at).total_seconds() <= 61


def test_kick_without_a_ban_window_leaves_refresh_open(acme, livekit, room, settings):
    settings.LIVEKIT_KICK_BAN_SECONDS = 0
    join(acme, livekit, "alice")

    assert acme.server().delete("/v1/rooms/standup/participants/alice").status_code == 204
    assert not RoomBan.objects.exists()


def test_kicking_someone_who_is_not_there_is_a_404(acme, livekit, room):
    response = acme.server().delete("/v1/rooms/standup/participants/ghost")

    assert response.status_code == 404
    assert response.json()["code"] == "participant_not_found"
    assert not RoomBan.objects.exists()


def test_mute_mutes_the_track_in_livekit(acme, livekit, room):
    join(acme, livekit, "alice")
    track = livekit.control.publish(room.livekit_name, "alice", tone={"frequency": 440, "seconds": 30})

    response = acme.server().post(
        "/v1/rooms/standup/participants/alice/mute", {"trackSid": track["sid"]}, format="json"
    )

    assert response.status_code == 204
    tracks = emulator_participants(livekit, room.livekit_name)["alice"]["tracks"]
    assert [t["muted"] for t in tracks if t["sid"] == track["sid"]] == [True]


def test_mute_of_an_unknown_track_is_a_404(acme, livekit, room):
    join(acme, livekit, "alice")

    response = acme.server().post("/v1/rooms/standup/participants/alice/mute", {"trackSid": "TR_nope"}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "track_not_found"


def test_mute_of_a_participant_who_is_not_in_the_room_is_participant_not_found(acme, livekit, room):
    join(acme, livekit, "alice")
    track = livekit.control.publish(room.livekit_name, "alice", tone={"frequency": 440, "seconds": 30})

    response = acme.server().post(
        "/v1/rooms/standup/participants/nobody/mute", {"trackSid": track["sid"]}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "participant_not_found"


def test_mute_needs_a_track_sid(acme, livekit, room):
    response = acme.server().post("/v1/rooms/standup/participants/alice/mute", {}, format="json")

    assert response.status_code == 400
    assert "trackSid" in response.json()["errors"]


def test_participants_of_an_unknown_room_are_a_404(acme, livekit):
    assert acme.server().get("/v1/rooms/nope/participants").status_code == 404


def test_listing_participants_when_livekit_fails_is_a_502(acme, livekit, room):
    livekit.control.faults(mode="error")

    response = acme.server().get("/v1/rooms/standup/participants")

    assert response.status_code == 502
