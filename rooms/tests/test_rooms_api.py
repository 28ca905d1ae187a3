"""POST/GET/DELETE /v1/rooms: the rtcstack room endpoints, against the LiveKit emulator."""

from __future__ import annotations

import pytest

from rooms.models import Room
from scaiwave.models import Event
from scaiwave.testing import audit_traced

pytestmark = pytest.mark.django_db


def livekit_room_names(emu) -> list[str]:
    return [room["name"] for room in emu.control.state()["rooms"]]


def test_create_room_returns_the_livekit_room_and_creates_it_in_livekit(acme, livekit):
    response = acme.server().post(
        "/v1/rooms", {"name": "standup", "maxParticipants": 8, "emptyTimeout": 120, "metadata": "m"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "standup"
    assert body["sid"].startswith("RM_")
    assert body["maxParticipants"] == 8
    assert body["emptyTimeout"] == 120
    assert body["metadata"] == "m"
    room = Room.objects.get(tenant=acme.tenant, name="standup")
    assert room.livekit_sid == body["sid"]
    assert room.livekit_name in livekit_room_names(livekit)
    assert Event.objects.filter(tenant=acme.tenant, type="room_created", data__roomId="standup").count() == 1


def test_two_tenants_may_use_the_same_room_name_without_sharing_the_livekit_room(acme, globex, livekit):
    a = acme.server().post("/v1/rooms", {"name": "standup"}, format="json").json()
    b = globex.server().post("/v1/rooms", {"name": "standup"}, format="json").json()

    assert a["sid"] != b["sid"]
    assert len(livekit_room_names(livekit)) == 2


def test_creating_an_open_room_twice_is_a_conflict(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    response = acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "room_exists"


def test_create_room_with_the_same_idempotency_key_replays_the_first_answer(acme, livekit):
    client = acme.server()
    first = client.post("/v1/rooms", {"name": "standup"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/v1/rooms", {"name": "standup"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Room.objects.filter(tenant=acme.tenant).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "maxParticipants": -1}, "maxParticipants"),
        ({"name": "ok", "emptyTimeout": "soon"}, "emptyTimeout"),
        ({"name": "ok", "metadata": {"not": "a string"}}, "metadata"),
    ],
)
def test_create_room_with_bad_fields_is_a_400_listing_them(acme, livekit, body, field):
    response = acme.server().post("/v1/rooms", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert field in response.json()["errors"]
    assert not Room.objects.exists()


def test_create_room_when_livekit_is_unreachable_is_a_502_and_leaves_no_row(acme, livekit):
    livekit.control.faults(mode="unreachable")

    response = acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "livekit_unreachable"
    assert not Room.objects.exists()


def test_list_rooms_shows_only_the_callers_open_rooms(acme, globex, livekit):
    acme.server().post("/v1/rooms", {"name": "one"}, format="json")
    acme.server().post("/v1/rooms", {"name": "two"}, format="json")
    globex.server().post("/v1/rooms", {"name": "theirs"}, format="json")
    acme.server().delete("/v1/rooms/one")

    response = acme.server().get("/v1/rooms")

    assert response.status_code == 200
    assert [room["name"] for room in response.json()["rooms"]] == ["two"]
    assert response.json()["nextCursor"] is None


def test_list_rooms_answers_every_open_room_without_a_cursor(acme, livekit):
    for number in range(60):
        Room.objects.create(
            tenant=acme.tenant,
            name=f"room-{number:02}",
            livekit_name=Room.livekit_name_for(acme.tenant, f"room-{number:02}"),
        )

    response = acme.server().get("/v1/rooms")

    assert response.status_code == 200
    assert len(response.json()["rooms"]) == 60
    assert response.json()["nextCursor"] is None


@pytest.mark.parametrize("name", ["  spaced  ", " lead", "trail "])
def test_a_room_name_is_kept_exactly_as_sent(acme, livekit, name):
    created = acme.server().post("/v1/rooms", {"name": name}, format="json")

    assert created.status_code == 201
    assert created.json()["name"] == name
    path = "/v1/rooms/" + name.replace(" ", "%20")
    assert acme.server().get(path).json()["name"] == name
    assert Room.objects.get(tenant=acme.tenant).name == name


def test_a_room_name_of_only_spaces_is_refused(acme, livekit):
    response = acme.server().post("/v1/rooms", {"name": "   "}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_list_rooms_pages_with_a_cursor(acme, livekit):
    for name in ("a", "b", "c"):
        acme.server().post("/v1/rooms", {"name": name}, format="json")

    first = acme.server().get("/v1/rooms?limit=2").json()
    second = acme.server().get(f"/v1/rooms?limit=2&cursor={first['nextCursor']}").json()

    assert [r["name"] for r in first["rooms"]] == ["c", "b"]
    assert [r["name"] for r in second["rooms"]] == ["a"]
    assert second["nextCursor"] is None


def test_get_room_returns_livekits_view(acme, livekit):
    created = acme.server().post("/v1/rooms", {"name": "standup", "maxParticipants": 3}, format="json").json()

    response = acme.server().get("/v1/rooms/standup")

    assert response.status_code == 200
    assert response.json()["sid"] == created["sid"]
    assert response.json()["maxParticipants"] == 3
    assert response.json()["name"] == "standup"


def test_get_unknown_room_is_a_404_problem(acme, livekit):
    response = acme.server().get("/v1/rooms/nope")

    assert response.status_code == 404
    assert response.json()["code"] == "room_not_found"
    assert response.json()["detail"]


def test_another_tenants_room_is_a_404(acme, globex, livekit):
    globex.server().post("/v1/rooms", {"name": "theirs"}, format="json")

    assert acme.server().get("/v1/rooms/theirs").status_code == 404
    assert acme.server().delete("/v1/rooms/theirs").status_code == 404
    assert Room.objects.get(name="theirs").is_open


def test_delete_room_closes_it_in_livekit_and_here(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    token = acme.server().post(
        "/v1/token", {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}, format="json"
    )
    livekit.control.connect(token.json()["token"])

    response = acme.server().delete("/v1/rooms/standup")

    assert response.status_code == 204
    assert livekit_room_names(livekit) == []
    room = Room.objects.get(name="standup")
    assert room.closed_at is not None
    assert Event.objects.filter(tenant=acme.tenant, type="room_closed", data__roomId="standup").count() == 1
    assert acme.server().get("/v1/rooms/standup").status_code == 404


def test_a_deleted_rooms_name_can_be_created_again(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    acme.server().delete("/v1/rooms/standup")

    response = acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    assert response.status_code == 201
    assert Room.objects.filter(name="standup").count() == 2


def test_delete_room_when_livekit_is_unreachable_is_a_502_and_keeps_it_open(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    livekit.control.faults(mode="unreachable")

    response = acme.server().delete("/v1/rooms/standup")

    assert response.status_code == 502
    assert Room.objects.get(name="standup").is_open


PATHS = [
    ("post", "/v1/rooms", {"name": "x"}),
    ("get", "/v1/rooms", None),
    ("get", "/v1/rooms/standup", None),
    ("delete", "/v1/rooms/standup", None),
    ("get", "/v1/rooms/standup/participants", None),
    ("delete", "/v1/rooms/standup/participants/alice", None),
    ("post", "/v1/rooms/standup/participants/alice/mute", {"trackSid": "TR_x"}),
    ("post", "/v1/rooms/standup/ingress", {}),
    ("get", "/v1/rooms/standup/ingress", None),
    ("delete", "/v1/rooms/standup/ingress/IN_x", None),
    ("get", "/v1/rooms/standup/members", None),
    ("put", "/v1/rooms/standup/members/bob", {"powerLevel": 10}),
    ("delete", "/v1/rooms/standup/members/bob", None),
    ("post", "/v1/token", {"roomId": "standup", "userId": "a", "name": "A", "role": "viewer"}),
    ("post", "/v1/token/refresh", {"roomId": "standup", "userId": "a", "name": "A", "role": "viewer"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PATHS)
def test_every_endpoint_needs_the_tenants_api_key(acme, livekit, method, path, body):
    from rest_framework.test import APIClient

    anonymous = getattr(APIClient(), method)(path, body, format="json")
    bad_key = APIClient()
    bad_key.credentials(HTTP_X_API_KEY="not-a-key")
    wrong = getattr(bad_key, method)(path, body, format="json")
    as_user = getattr(acme.user("alice"), method)(path, body, format="json")

    assert anonymous.status_code == 401
    assert anonymous["Content-Type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert as_user.status_code == 403
    assert as_user.json()["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), [p for p in PATHS if "/v1/rooms/standup" in p[1]])
def test_other_tenants_key_sees_404_for_room_paths(acme, globex, livekit, method, path, body):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    response = getattr(globex.server(), method)(path, body, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "room_not_found"


def test_a_delete_is_recorded_with_who_did_it(acme, livekit, caplog):
    caplog.set_level("INFO", logger="scaiwave.audit")
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")

    assert acme.server().delete("/v1/rooms/standup").status_code == 204

    assert audit_traced(caplog, "room_deleted", "server")["id"] == "standup"


def test_the_first_tenants_livekit_room_carries_the_room_id_itself(acme, globex, livekit):
    assert acme.server().post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201
    assert globex.server().post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201

    names = {room["name"] for room in livekit.control.state()["rooms"]}

    assert names == {"standup", f"{globex.tenant.pk}--standup"}


def test_a_room_name_read_as_another_tenants_livekit_room_is_refused(acme, globex, livekit):
    response = acme.server().post("/v1/rooms", {"name": f"{globex.tenant.pk}--standup"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "room_name_reserved"
    assert livekit.control.state()["rooms"] == []
