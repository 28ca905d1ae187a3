"""`/app/api/rooms`: the caller's rooms (user token only) and, on a demo server, creating rooms and adding
people as the demo tenant's server. Personas: owner (power 100), member (power 0), outsider, other tenant."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from calls.tests.conftest import make_room
from rooms.models import Room, RoomMember
from rooms.testing import livekit, livekit_emulator  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def demo_user(name: str) -> APIClient:
    session = APIClient().post("/app/session", {"name": name}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session['token']}")
    return client


def room_names(client: APIClient) -> list[str]:
    response = client.get("/app/api/rooms")
    assert response.status_code == 200, response.content
    return [room["id"] for room in response.json()["data"]]


def test_a_user_sees_only_the_open_rooms_they_are_a_member_of(acme, globex):
    standup = make_room(acme, "standup", {"alice": 0, "bob": 50})
    make_room(acme, "board", {"bob": 0})
    make_room(globex, "standup-globex", {"alice": 0})
    left = make_room(acme, "old", {"alice": 0})
    RoomMember.objects.filter(room=left).update(left_at=standup.created_at)

    body = acme.user("alice").get("/app/api/rooms").json()
    assert [room["id"] for room in body["data"]] == ["standup"]
    (room,) = body["data"]
    assert room["my_power_level"] == 0
    assert {(m["user_id"], m["name"], m["power_level"]) for m in room["members"]} == {
        ("alice", "Alice", 0),
        ("bob", "Bob", 50),
    }
    assert room["live_call"] is None
    assert room_names(acme.user("mallory")) == []


def test_a_room_with_a_ringing_call_says_so(acme, livekit):  # noqa: F811
    make_room(acme, "standup", {"alice": 0, "bob": 0})
    started = acme.user("alice").post("/v1/calls/initiate", {"room_id": "standup", "type": "video"}, format="json")
    assert started.status_code == 201, started.content
    (listed,) = acme.user("bob").get("/app/api/rooms").json()["data"]
    assert listed["live_call"] == {"call_id": started.json()["data"]["call_id"], "type": "video", "status": "ringing"}


def test_the_rooms_list_needs_a_user_token(acme):
    assert APIClient().get("/app/api/rooms").status_code == 401
    assert acme.server().get("/app/api/rooms").status_code == 403


def test_the_rooms_list_costs_the_same_queries_for_one_room_or_many(acme, django_assert_max_num_queries):
    for index in range(5):
        make_room(acme, f"room-{index}", {"alice": 0, "bob": 0, "carol": 0})
    client = acme.user("alice")
    # auth (tenant cache, user, touch) + rooms + members + live calls
    with django_assert_max_num_queries(8):
        assert len(client.get("/app/api/rooms").json()["data"]) == 5


def test_a_demo_user_creates_a_room_with_people_in_livekit_and_owns_it(livekit):  # noqa: F811
    alice = demo_user("Alice")
    response = alice.post("/app/api/rooms", {"name": "standup", "people": ["Bob", "Carol", "Alice"]}, format="json")
    assert response.status_code == 201, response.content
    room = Room.objects.get(name="standup", tenant__name="demo")
    members = {m.user.external_id: m.power_level for m in RoomMember.objects.filter(room=room).select_related("user")}
    assert members == {"alice": 100, "bob": 0, "carol": 0}
    assert room.livekit_name in {r["name"] for r in livekit.control.state()["rooms"]}
    assert room_names(demo_user("Bob")) == ["standup"]
    assert room_names(demo_user("Dave")) == []


def test_creating_a_room_twice_is_a_409(livekit):  # noqa: F811
    alice = demo_user("Alice")
    assert alice.post("/app/api/rooms", {"name": "standup"}, format="json").status_code == 201
    second = alice.post("/app/api/rooms", {"name": "standup"}, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "room_exists"


@pytest.mark.parametrize("name", ["", "a/b", "x" * 201])
def test_a_bad_room_name_is_a_400(livekit, name):  # noqa: F811
    response = demo_user("Alice").post("/app/api/rooms", {"name": name}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert not Room.objects.exists()


def test_another_tenants_user_cannot_create_demo_rooms(acme, livekit):  # noqa: F811
    response = acme.user("alice").post("/app/api/rooms", {"name": "standup"}, format="json")
    assert response.status_code == 403
    assert not Room.objects.exists()


def test_creating_rooms_is_refused_in_production_mode(livekit, settings):  # noqa: F811
    alice = demo_user("Alice")
    settings.SCAIWAVE_MODE = "production"
    response = alice.post("/app/api/rooms", {"name": "standup"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "demo_disabled"
    assert not Room.objects.exists()


def test_the_owner_adds_a_person_but_a_plain_member_or_an_outsider_cannot(livekit):  # noqa: F811
    alice = demo_user("Alice")
    alice.post("/app/api/rooms", {"name": "standup", "people": ["Bob"]}, format="json")

    added = alice.post("/app/api/rooms/standup/members", {"name": "Carol"}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["data"] == {"user_id": "carol", "name": "Carol", "power_level": 0}
    assert room_names(demo_user("Carol")) == ["standup"]

    by_member = demo_user("Bob").post("/app/api/rooms/standup/members", {"name": "Erin"}, format="json")
    assert by_member.status_code == 403
    by_outsider = demo_user("Mallory").post("/app/api/rooms/standup/members", {"name": "Erin"}, format="json")
    assert by_outsider.status_code == 404
    assert room_names(demo_user("Erin")) == []


def test_adding_people_is_refused_in_production_mode(livekit, settings):  # noqa: F811
    alice = demo_user("Alice")
    alice.post("/app/api/rooms", {"name": "standup"}, format="json")
    settings.SCAIWAVE_MODE = "production"
    response = alice.post("/app/api/rooms/standup/members", {"name": "Carol"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "demo_disabled"
