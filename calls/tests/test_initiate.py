"""POST /v1/calls/initiate"""

from __future__ import annotations

import pytest
from livekit import api as lk

from calls.models import Call, CallParticipant
from calls.tests.conftest import initiate, make_room
from rooms.services import iso_ms
from scaiwave.models import Event

pytestmark = pytest.mark.django_db


def verify(emulator, token: str):
    return lk.TokenVerifier(emulator.api_key, emulator.api_secret).verify(token)


def test_initiate_returns_call_id_and_a_livekit_token_for_the_initiator(acme, standup, livekit):
    response = initiate(acme, type_="video")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"data"}
    data = body["data"]
    assert set(data) == {"call_id", "livekit_url", "livekit_token", "livekit_room"}
    assert data["call_id"].startswith("call-")
    assert data["livekit_room"] == f"scaiwave-{data['call_id']}"
    assert data["livekit_url"] == livekit.ws_url
    claims = verify(livekit, data["livekit_token"])
    assert claims.identity == "alice"
    assert claims.video.room == data["livekit_room"]
    assert claims.video.room_join is True
    assert not claims.video.room_admin


def test_initiate_creates_the_livekit_room(acme, standup, livekit):
    data = initiate(acme).json()["data"]

    rooms = [room["name"] for room in livekit.control.state()["rooms"]]
    assert data["livekit_room"] in rooms


def test_initiate_rings_every_other_member_with_an_invite(acme, standup, livekit):
    data = initiate(acme).json()["data"]

    call = Call.objects.get(pk=data["call_id"])
    assert call.status == "ringing"
    invite = Event.objects.get(type="swp.call.invite")
    others = sorted(acme.user_row(sub).pk for sub in ("bob", "carol", "dave"))
    assert invite.user_ids == others
    assert invite.data == {
        "call_id": call.pk,
        "room_id": "standup",
        "type": "audio",
        "initiator_id": "alice",
        "initiator_name": "Alice",
        "livekit_room": call.livekit_room,
        "expires_at": iso_ms(call.ring_expires_at),  # one time format: UTC, milliseconds, Z
    }
    assert CallParticipant.objects.filter(call=call).count() == 4


def test_ring_expiry_follows_the_tenants_ring_timeout(acme, standup, livekit):
    acme.tenant.ring_timeout_seconds = 12
    acme.tenant.save()

    call = Call.objects.get(pk=initiate(acme).json()["data"]["call_id"])

    assert (call.ring_expires_at - call.created_at).total_seconds() == 12


def test_initiating_while_a_call_is_live_returns_409_with_the_live_call_id(acme, ringing):
    response = initiate(acme, sub="bob")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "SW_CALL_ALREADY_ACTIVE"
    assert response.json()["call_id"] == ringing
    assert Call.objects.count() == 1


def test_initiate_by_a_non_member_is_forbidden(acme, standup, livekit):
    response = initiate(acme, sub="mallory")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"
    assert not Call.objects.exists()


def test_initiate_in_another_tenants_room_is_not_found(acme, globex, standup, livekit):
    make_room(globex, "other", {"gina": 100})

    response = initiate(globex, sub="gina", room="standup")

    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_ROOM_NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [{}, {"room_id": "standup"}, {"room_id": "standup", "type": "hologram"}, {"type": "audio"}, ["standup"]],
)
def test_initiate_with_an_invalid_body_is_a_400_problem(acme, standup, livekit, body):
    response = acme.user("alice").post("/v1/calls/initiate", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "SW_CALL_INVALID_REQUEST"


@pytest.mark.parametrize(
    "body",
    [
        {"room_id": 12345, "type": "audio"},
        {"room_id": ["standup"], "type": "audio"},
        {"room_id": True, "type": "audio"},
        {"room_id": "standup", "type": 1},
    ],
)
def test_initiate_with_a_wrongly_typed_field_is_a_400_naming_it(acme, livekit, body):
    make_room(acme, "12345", {"alice": 0, "bob": 0})
    make_room(acme, "standup", {"alice": 0, "bob": 0})

    response = acme.user("alice").post("/v1/calls/initiate", body, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "SW_CALL_INVALID_REQUEST"
    assert set(response.json()["errors"]) <= {"room_id", "type"}
    assert not Call.objects.exists()


def test_initiate_with_malformed_json_is_a_400_problem(acme, standup, livekit):
    response = acme.user("alice").post("/v1/calls/initiate", "{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "SW_CALL_INVALID_REQUEST"


def test_initiate_with_the_server_key_is_forbidden(acme, standup, livekit):
    response = acme.server().post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_initiate_without_credentials_is_401(standup):
    from rest_framework.test import APIClient

    response = APIClient().post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")

    assert response.status_code == 401


def test_initiate_when_livekit_is_unreachable_is_502_and_the_call_is_failed(acme, standup, livekit_down):
    response = initiate(acme)

    assert response.status_code == 502
    assert response.json()["code"] == "SW_CALL_LIVEKIT_UNREACHABLE"
    call = Call.objects.get()
    assert call.status == "failed"
    assert call.failure_reason.startswith("livekit:")
    assert not Event.objects.filter(type="swp.call.invite").exists()


def test_a_failed_call_does_not_block_the_next_initiate(acme, standup, livekit_down, settings, emulator):
    assert initiate(acme).status_code == 502
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_API_SECRET = emulator.api_secret
    settings.LIVEKIT_TIMEOUT = 5.0

    assert initiate(acme).status_code == 201


def test_initiate_with_the_same_idempotency_key_replays_the_first_answer(acme, standup, livekit):
    client = acme.user("alice")
    body = {"room_id": "standup", "type": "audio"}

    first = client.post("/v1/calls/initiate", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post("/v1/calls/initiate", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Call.objects.count() == 1
