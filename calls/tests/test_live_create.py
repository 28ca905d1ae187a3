"""POST /v1/live/calls (document 003): the contract's schemas, validation, who may schedule for whom,
and the provider errors. The schemas come from the document's text (calls.live_testing)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from calls.live_testing import document_schemas
from calls.models import LiveCall
from rooms.models import Room, RoomMember

pytestmark = pytest.mark.django_db

URL = "/v1/live/calls"


def conforms(body: dict[str, Any], section: str) -> None:
    validator = Draft202012Validator(document_schemas()[section], format_checker=FormatChecker())
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, problems


@pytest.fixture
def valid_requests() -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = [
        {"host_user_id": "alice", "title": "Friday AMA"},
        {"host_user_id": "alice", "title": "Later", "scheduled_at": "2030-01-02T03:04:05Z", "metadata": {"k": [1]}},
        {"host_user_id": "alice", "title": "Now", "scheduled_at": None, "metadata": {}},
    ]
    for body in requests:
        conforms(body, "request")  # the test's own inputs are valid per the document
    return requests


def test_every_201_body_validates_against_the_documents_schema(acme, livekit, valid_requests):
    alice = acme.user("alice")
    for body in valid_requests:
        response = alice.post(URL, body, format="json")
        assert response.status_code == 201, response.content
        payload = response.json()
        conforms(payload, "201")
        assert payload["status"] == "scheduled"
        assert payload["stream_call_type"] == "livestream"
        assert payload["host_user_id"] == "alice" and payload["title"] == body["title"]
        assert payload["recording_url"] is None and payload["started_at"] is None


def test_the_stream_call_id_is_the_livekit_room_the_call_created(acme, livekit):
    payload = acme.user("alice").post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json").json()
    live = LiveCall.objects.get(pk=payload["id"])
    assert payload["stream_call_id"] == live.room.livekit_name
    assert payload["stream_call_id"] in [room["name"] for room in livekit.control.state()["rooms"]]
    # The host is the room's only member, at full power.
    [member] = RoomMember.objects.filter(room=live.room)
    assert member.user.external_id == "alice" and member.power_level == 100


def test_scheduled_at_and_metadata_are_returned_as_given(acme, livekit):
    body = {"host_user_id": "alice", "title": "AMA", "scheduled_at": "2030-01-02T03:04:05Z", "metadata": {"a": 1}}
    payload = acme.user("alice").post(URL, body, format="json").json()
    assert payload["scheduled_at"] == "2030-01-02T03:04:05Z"
    assert payload["metadata"] == {"a": 1}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"host_user_id", "title"}),
        ({"host_user_id": "alice"}, {"title"}),
        ({"host_user_id": "alice", "title": ""}, {"title"}),
        ({"host_user_id": "", "title": "x"}, {"host_user_id"}),
        ({"host_user_id": "alice", "title": "x", "scheduled_at": "tomorrow"}, {"scheduled_at"}),
        ({"host_user_id": "alice", "title": "x", "metadata": ["not", "an", "object"]}, {"metadata"}),
        ({"host_user_id": 7, "title": {"no": 1}}, {"host_user_id", "title"}),
    ],
)
def test_invalid_bodies_are_400_problems_listing_the_fields(acme, livekit, body, fields):
    response = acme.user("alice").post(URL, body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_failed" and problem["error"] == "validation_failed"
    assert fields <= set(problem["errors"])
    assert not LiveCall.objects.exists()


@pytest.mark.parametrize(
    "scheduled_at", ["2026-12-31T17:00:00", "2026-12-31", "2026-12-31T17:00:00.000", "2026-12-31 17:00:00Z", "17:00"]
)
def test_scheduled_at_without_an_offset_is_not_an_rfc3339_date_time_and_is_400(acme, livekit, scheduled_at):
    body = {"host_user_id": "alice", "title": "AMA", "scheduled_at": scheduled_at}

    response = acme.user("alice").post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {"scheduled_at"}
    assert not LiveCall.objects.exists()


def test_scheduled_at_with_an_offset_is_the_same_instant(acme, livekit):
    body = {"host_user_id": "alice", "title": "AMA", "scheduled_at": "2030-12-31T19:00:00+02:00"}
    conforms(body, "request")

    payload = acme.user("alice").post(URL, body, format="json").json()

    assert payload["scheduled_at"] == "2030-12-31T17:00:00Z"


@pytest.mark.parametrize("title", ["   ", "  padded  ", "\ttabbed\n"])
def test_the_title_is_kept_exactly_as_sent(acme, livekit, title):
    body = {"host_user_id": "alice", "title": title}
    conforms(body, "request")

    response = acme.user("alice").post(URL, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["title"] == title
    assert acme.user("alice").get(f"{URL}/{response.json()['id']}").json()["title"] == title


def test_a_user_cannot_schedule_for_someone_else(acme, livekit):
    response = acme.user("mallory").post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not LiveCall.objects.exists()


def test_the_tenant_key_schedules_for_any_user(acme, livekit):
    response = acme.server().post(URL, {"host_user_id": "carol", "title": "AMA"}, format="json")
    assert response.status_code == 201
    conforms(response.json(), "201")
    assert LiveCall.objects.get().host.external_id == "carol"


def test_no_or_bad_credentials_are_401(acme, livekit):
    from rest_framework.test import APIClient

    assert APIClient().post(URL, {"host_user_id": "alice", "title": "x"}, format="json").status_code == 401
    forged = APIClient()
    forged.credentials(HTTP_X_API_KEY="not-a-secret")
    assert forged.post(URL, {"host_user_id": "alice", "title": "x"}, format="json").status_code == 401


def test_livekit_down_is_a_502_with_error_and_message_and_nothing_is_kept(acme, livekit_down):
    response = acme.user("alice").post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json")
    assert response.status_code == 502
    body = response.json()
    conforms(body, "502")
    assert body["error"] == "provider_error"
    assert not LiveCall.objects.exists() and not Room.objects.exists()


def test_no_livekit_configured_is_a_503_provider_not_configured(acme, settings):
    settings.LIVEKIT_URL = ""
    settings.LIVEKIT_API_KEY = ""
    settings.LIVEKIT_API_SECRET = ""
    response = acme.user("alice").post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json")
    assert response.status_code == 503
    body = response.json()
    conforms(body, "503")
    assert body["error"] == "provider_not_configured"
    assert not LiveCall.objects.exists()


def test_an_idempotency_key_replays_the_first_201(acme, livekit):
    alice = acme.user("alice")
    alice.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.user_token('alice')}", HTTP_IDEMPOTENCY_KEY="k-1")
    first = alice.post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json")
    second = alice.post(URL, {"host_user_id": "alice", "title": "AMA"}, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert LiveCall.objects.count() == 1
