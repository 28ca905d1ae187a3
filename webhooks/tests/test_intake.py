"""POST /v1/calls/webhook: LiveKit's signature, storage by event id, outcomes."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from rooms.testing import sign_webhook, webhook_body
from webhooks.models import LiveKitEvent

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:The HMAC key is")]

CALLS: list[str] = []


def failing_handler(event, record):
    CALLS.append(event.id)
    if len(CALLS) == 1:
        raise RuntimeError("database hiccup")


def stale_handler(event, record):
    record.outcome = "stale"


@pytest.fixture(autouse=True)
def _livekit_keys(settings):
    settings.LIVEKIT_API_KEY = "devkey"
    settings.LIVEKIT_API_SECRET = "secret"
    CALLS.clear()


def event(event_id="EV_abc123456789", kind="room_started"):
    return lk_webhook.WebhookEvent(
        event=kind, id=event_id, created_at=int(time.time()), room=lk_models.Room(sid="RM_1", name="nobodys-room")
    )


def post(body, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return Client().post("/v1/calls/webhook", data=body, content_type="application/webhook+json", **headers)


def test_a_signed_event_is_stored_and_applied():
    body = webhook_body(event())

    response = post(body, sign_webhook(body))

    assert response.status_code == 200
    assert response.json() == {"received": True, "eventId": "EV_abc123456789", "duplicate": False, "outcome": "applied"}
    record = LiveKitEvent.objects.get()
    assert (record.event, record.room_name, record.outcome) == ("room_started", "nobodys-room", "applied")
    assert record.payload["id"] == "EV_abc123456789"
    assert record.applied_at is not None


def test_a_duplicate_is_counted_and_not_applied_again(settings):
    settings.LIVEKIT_EVENT_HANDLERS = ["webhooks.tests.test_intake.stale_handler"]
    body = webhook_body(event())
    post(body, sign_webhook(body))

    again = post(body, sign_webhook(body))

    assert again.json()["duplicate"] is True
    assert LiveKitEvent.objects.get().duplicates == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer x", "not-a-jwt"],
)
def test_a_missing_or_malformed_signature_is_a_401_problem(authorization):
    body = webhook_body(event())

    response = post(body, authorization)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "webhook_signature_invalid"
    assert not LiveKitEvent.objects.exists()


def test_a_tampered_body_is_a_401():
    body = webhook_body(event())
    signature = sign_webhook(body)

    response = post(body.replace(b"nobodys-room", b"someone-else"), signature)

    assert response.status_code == 401
    assert not LiveKitEvent.objects.exists()


def test_an_event_signed_with_another_key_is_a_401():
    body = webhook_body(event())

    response = post(body, sign_webhook(body, api_key="otherkey", api_secret="othersecret-long-enough-for-hs256"))

    assert response.status_code == 401


def test_the_bearer_prefix_is_refused_as_livekit_never_sends_it():
    body = webhook_body(event())

    assert post(body, "Bearer " + sign_webhook(body)).status_code == 401


def test_without_livekit_keys_the_intake_is_a_503(settings):
    settings.LIVEKIT_API_KEY = ""
    body = webhook_body(event())

    response = post(body, sign_webhook(body))

    assert response.status_code == 503


def test_a_handler_that_fails_marks_the_event_failed_and_a_redelivery_applies_it(settings):
    settings.LIVEKIT_EVENT_HANDLERS = ["webhooks.tests.test_intake.failing_handler"]
    body = webhook_body(event())

    first = post(body, sign_webhook(body))
    record = LiveKitEvent.objects.get()
    assert first.status_code == 200
    assert first.json()["outcome"] == "failed"
    assert "database hiccup" in record.error

    second = post(body, sign_webhook(body))

    assert second.json()["outcome"] == "applied"
    assert LiveKitEvent.objects.get().outcome == "applied"
    assert CALLS == ["EV_abc123456789", "EV_abc123456789"]


def test_a_handler_may_mark_an_event_stale(settings):
    settings.LIVEKIT_EVENT_HANDLERS = ["webhooks.tests.test_intake.stale_handler"]
    body = webhook_body(event())

    assert post(body, sign_webhook(body)).json()["outcome"] == "stale"
    assert LiveKitEvent.objects.get().outcome == "stale"


def test_the_intake_needs_no_scaiwave_credentials_but_ignores_them(acme):
    body = webhook_body(event())

    response = Client().post(
        "/v1/calls/webhook",
        data=body,
        content_type="application/webhook+json",
        HTTP_AUTHORIZATION=sign_webhook(body),
        HTTP_X_API_KEY="garbage",
    )

    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"this is not json", b"[1, 2, 3]", b'{"event": 7}', b"\xff\xfe not utf-8"])
def test_a_signed_body_that_is_not_a_webhook_event_is_a_400(body):
    response = post(body, sign_webhook(body))

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "webhook_body_invalid"
    assert not LiveKitEvent.objects.exists()


@pytest.mark.parametrize("created_at", ["99999999999999999", "-5", "-99999999999999999"])
def test_a_signed_event_with_an_impossible_created_at_is_a_400(created_at):
    body = (
        '{"event": "room_started", "id": "EV_badtime0001", "room": {"name": "nobodys-room"}, '
        f'"createdAt": "{created_at}"}}'
    ).encode()

    response = post(body, sign_webhook(body))

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "webhook_body_invalid"
    assert not LiveKitEvent.objects.exists()
