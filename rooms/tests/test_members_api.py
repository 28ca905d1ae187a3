"""Our member endpoints: PUT/GET/DELETE /v1/rooms/{roomId}/members[/{userId}]."""

from __future__ import annotations

import pytest

from rooms.models import RoomMember
from rooms.selectors import room_subscribe_check
from scaiwave.api.auth import Principal
from scaiwave.models import TenantUser
from scaiwave.testing import audit_traced

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    from rooms.models import Room

    return Room.objects.get(tenant=acme.tenant, name="standup")


def test_put_member_creates_the_user_and_the_membership(acme, room):
    response = acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 50, "name": "Bob"}, format="json")

    assert response.status_code == 201
    assert response.json()["userId"] == "bob"
    assert response.json()["name"] == "Bob"
    assert response.json()["powerLevel"] == 50
    user = TenantUser.objects.get(tenant=acme.tenant, external_id="bob")
    assert RoomMember.objects.get(room=room, user=user).is_admin


def test_put_member_again_updates_the_power_level(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 50}, format="json")

    response = acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 10}, format="json")

    assert response.status_code == 200
    assert RoomMember.objects.get(room=room).power_level == 10


@pytest.mark.parametrize("body", [{}, {"powerLevel": 101}, {"powerLevel": -1}, {"powerLevel": "high"}])
def test_put_member_with_a_bad_power_level_is_a_400(acme, room, body):
    response = acme.server().put("/v1/rooms/standup/members/bob", body, format="json")

    assert response.status_code == 400
    assert "powerLevel" in response.json()["errors"]


def test_list_members_highest_power_first(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 10}, format="json")
    acme.server().put("/v1/rooms/standup/members/carol", {"powerLevel": 100}, format="json")

    response = acme.server().get("/v1/rooms/standup/members")

    assert response.status_code == 200
    assert [(m["userId"], m["powerLevel"]) for m in response.json()["members"]] == [("carol", 100), ("bob", 10)]


def test_delete_member_removes_them_from_the_list(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 10}, format="json")

    assert acme.server().delete("/v1/rooms/standup/members/bob").status_code == 204

    assert acme.server().get("/v1/rooms/standup/members").json()["members"] == []
    again = acme.server().delete("/v1/rooms/standup/members/bob")
    assert again.status_code == 404
    assert again.json()["code"] == "member_not_found"


def test_a_removed_member_set_again_is_a_member_again(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 10}, format="json")
    acme.server().delete("/v1/rooms/standup/members/bob")

    response = acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 20}, format="json")

    assert response.status_code == 201
    assert [m["userId"] for m in acme.server().get("/v1/rooms/standup/members").json()["members"]] == ["bob"]


def test_members_of_an_unknown_room_are_a_404(acme, livekit):
    assert acme.server().put("/v1/rooms/nope/members/bob", {"powerLevel": 1}, format="json").status_code == 404


def test_only_a_member_may_subscribe_to_the_rooms_events(acme, globex, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 0}, format="json")
    bob = TenantUser.objects.get(tenant=acme.tenant, external_id="bob")
    eve = acme.user_row("eve")
    outsider = globex.user_row("bob")

    assert room_subscribe_check(principal=Principal(acme.tenant, bob), room_id="standup") == str(room.pk)
    assert room_subscribe_check(principal=Principal(acme.tenant, eve), room_id="standup") is None
    assert room_subscribe_check(principal=Principal(globex.tenant, outsider), room_id="standup") is None
    assert room_subscribe_check(principal=Principal(acme.tenant, bob), room_id="other") is None


def test_a_removal_is_recorded_with_who_did_it(acme, room, caplog):
    caplog.set_level("INFO", logger="scaiwave.audit")
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 10}, format="json")

    assert acme.server().delete("/v1/rooms/standup/members/bob").status_code == 204

    data = audit_traced(caplog, "member_removed", "server")
    assert (data["id"], data["roomId"]) == ("bob", "standup")


@pytest.mark.parametrize(
    "user_id", ["al%00ice", "al%01ice", "al%7Fice", "x" * 10_000], ids=["nul", "control", "del", "10000-chars"]
)
def test_a_member_id_in_the_path_is_held_to_the_body_fields_rules(acme, room, user_id):
    users_before = TenantUser.objects.filter(tenant=acme.tenant).count()
    put = acme.server().put(f"/v1/rooms/standup/members/{user_id}", {"powerLevel": 0}, format="json")
    delete = acme.server().delete(f"/v1/rooms/standup/members/{user_id}")

    for response in (put, delete):
        assert response.status_code == 400, response.content[:200]
        assert response["Content-Type"].startswith("application/problem+json")
        assert response.json()["code"] == "validation_failed" and "userId" in response.json()["errors"]
    assert TenantUser.objects.filter(tenant=acme.tenant).count() == users_before
