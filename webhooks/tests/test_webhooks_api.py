"""`/v1/webhooks`: register, list, get, update, delete, test, delivery log, retry, rotate-secret."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from scaiwave.events.services import event_emit
from scaiwave.testing import audit_traced
from webhooks.events import WEBHOOK_EVENT_TYPES
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    receiver_fixture,
    webhook_settings_fixture,
)

pytestmark = pytest.mark.django_db


def register(creds, url="https://example.com/hook", **body):
    response = creds.server().post("/v1/webhooks", {"url": url, **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- permissions -------------------------------------------------------------------------------


def test_without_credentials_is_401(acme):
    from rest_framework.test import APIClient

    response = APIClient().get("/v1/webhooks")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_a_user_token_may_not_manage_webhooks(acme):
    assert acme.user("alice").get("/v1/webhooks").status_code == 403
    assert acme.user("alice").post("/v1/webhooks", {"url": "https://example.com"}, format="json").status_code == 403


def test_another_tenants_webhook_is_not_found(acme, globex):
    hook = register(acme)
    other = globex.server()
    for method, path in [
        ("get", f"/v1/webhooks/{hook['id']}"),
        ("patch", f"/v1/webhooks/{hook['id']}"),
        ("delete", f"/v1/webhooks/{hook['id']}"),
        ("post", f"/v1/webhooks/{hook['id']}/test"),
        ("post", f"/v1/webhooks/{hook['id']}/rotate-secret"),
        ("get", f"/v1/webhooks/{hook['id']}/deliveries"),
    ]:
        response = getattr(other, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "webhook_not_found"
    assert other.get("/v1/webhooks").json()["webhooks"] == []
    assert WebhookEndpoint.objects.filter(pk=hook["id"]).exists()


# --- register, list, get ------------------------------------------------------------------------


def test_register_returns_the_generated_secret_once_and_masks_it_afterwards(acme):
    hook = register(acme)
    assert hook["id"].startswith("wh_")
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    assert hook["events"] == ["*"] and hook["enabled"] is True
    Webhook(hook["secret"])  # a valid Standard Webhooks secret
    assert acme.server().get(f"/v1/webhooks/{hook['id']}").json()["secret"] == "***"
    assert [h["secret"] for h in acme.server().get("/v1/webhooks").json()["webhooks"]] == ["***"]
    stored = WebhookEndpoint.objects.get(pk=hook["id"])
    assert hook["secret"] not in stored.secret_encrypted and stored.secret == hook["secret"]


def test_register_keeps_a_given_secret_and_event_filter(acme):
    hook = register(acme, events=["room_created", "swp.call.invite"], secret="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=")
    assert hook["secret"] == "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    assert hook["events"] == ["room_created", "swp.call.invite"]


def test_every_documented_event_name_is_accepted(acme):
    assert register(acme, events=list(WEBHOOK_EVENT_TYPES))["events"] == list(WEBHOOK_EVENT_TYPES)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://example.com", "events": ["room_exploded"]}, "unknown_event_type"),
        ({"url": "https://example.com", "events": []}, "validation_failed"),
        ({"url": "https://example.com", "events": "room_created"}, "validation_failed"),
        ({"url": "https://example.com", "secret": "short"}, "invalid_secret"),
        ({"events": ["*"]}, "validation_failed"),
        ({"url": "ftp://example.com"}, "invalid_webhook_url"),
    ],
)
def test_bad_registrations_are_400_problems(acme, body, code):
    response = acme.server().post("/v1/webhooks", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_register_with_the_same_idempotency_key_replays_the_first_response(acme):
    client = acme.server()
    first = client.post("/v1/webhooks", {"url": "https://example.com/a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/v1/webhooks", {"url": "https://example.com/a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert WebhookEndpoint.objects.count() == 1


def test_list_is_cursor_paginated_newest_first(acme):
    ids = [register(acme, url=f"https://example.com/{n}")["id"] for n in range(3)]
    first = acme.server().get("/v1/webhooks?limit=2").json()
    second = acme.server().get(f"/v1/webhooks?limit=2&cursor={first['nextCursor']}").json()
    assert [h["id"] for h in first["webhooks"] + second["webhooks"]] == ids[::-1]
    assert second["nextCursor"] is None


# --- update, delete ----------------------------------------------------------------------------


def test_patch_changes_url_events_and_enabled(acme):
    hook = register(acme)
    response = acme.server().patch(
        f"/v1/webhooks/{hook['id']}",
        {"url": "https://example.org/new", "events": ["room_closed"], "enabled": False},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["url"], body["events"], body["enabled"], body["secret"]) == (
        "https://example.org/new",
        ["room_closed"],
        False,
        "***",
    )
    assert body["disabledReason"] == "disabled by the API" and body["disabledAt"]
    enabled = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"enabled": True}, format="json").json()
    assert enabled["enabled"] is True and enabled["disabledReason"] is None and enabled["disabledAt"] is None


def test_patch_with_an_unknown_event_is_400_and_changes_nothing(acme):
    hook = register(acme)
    response = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"events": ["nope"]}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "unknown_event_type"
    assert WebhookEndpoint.objects.get(pk=hook["id"]).events == ["*"]


def test_delete_removes_the_webhook(acme):
    hook = register(acme)
    assert acme.server().delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert acme.server().get(f"/v1/webhooks/{hook['id']}").status_code == 404


# --- test delivery, rotation, log, retry -------------------------------------------------------


@pytest.mark.usefixtures("webhook_settings")
def test_test_endpoint_sends_a_real_signed_delivery(acme, receiver):
    hook = register(acme, url=receiver.url)
    response = acme.server().post(f"/v1/webhooks/{hook['id']}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["delivered"] is True and body["statusCode"] == 200
    [request] = receiver.requests
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test" and payload["data"] == {"webhookId": hook["id"]}


@pytest.mark.usefixtures("webhook_settings")
def test_test_endpoint_reports_a_failing_receiver(acme):
    with WebhookReceiver(script=[503]) as failing:
        hook = register(acme, url=failing.url)
        body = acme.server().post(f"/v1/webhooks/{hook['id']}/test").json()
    assert body["delivered"] is False and body["statusCode"] == 503


@pytest.mark.usefixtures("webhook_settings")
def test_test_endpoint_reports_an_unreachable_receiver_without_a_status(acme):
    with WebhookReceiver() as gone:
        url = gone.url
    hook = register(acme, url=url)
    body = acme.server().post(f"/v1/webhooks/{hook['id']}/test").json()
    assert body["delivered"] is False and body["statusCode"] is None and body["error"].startswith("connect_error")


@pytest.mark.usefixtures("webhook_settings")
def test_rotate_secret_returns_the_new_secret_once_and_both_sign_for_the_grace_period(acme, receiver, settings):
    settings.WEBHOOK_SECRET_GRACE_SECONDS = 3600
    hook = register(acme, url=receiver.url)
    rotated = acme.server().post(f"/v1/webhooks/{hook['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]
    assert rotated["previousSecretExpiresAt"] is not None
    assert acme.server().get(f"/v1/webhooks/{hook['id']}").json()["secret"] == "***"
    acme.server().post(f"/v1/webhooks/{hook['id']}/test")
    [request] = receiver.requests
    Webhook(hook["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
def test_delivery_log_shows_attempts_and_a_delivery_can_be_retried(acme):
    with WebhookReceiver(script=[400]) as receiver_:
        hook = register(acme, url=receiver_.url)
        with transaction.atomic():
            event = event_emit(tenant=acme.tenant, type="room_created", data={"roomId": "r"})
        log = acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries").json()
        [entry] = log["deliveries"]
        assert entry["eventId"] == event.id and entry["eventType"] == "room_created"
        assert (entry["status"], entry["attempts"], entry["lastStatusCode"]) == ("failed", 1, 400)
        assert entry["lastError"] == "http_status: 400" and entry["durationMs"] is not None
        assert log["nextCursor"] is None

        response = acme.server().post(f"/v1/webhooks/{hook['id']}/deliveries/{entry['id']}/retry")
        assert response.status_code == 202
        delivered = acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries?status=delivered").json()
        [entry] = delivered["deliveries"]
        assert (entry["status"], entry["attempts"], entry["lastStatusCode"]) == ("delivered", 2, 200)
        assert [json.loads(r.body)["id"] for r in receiver_.requests] == [event.id, event.id]


def test_retrying_an_unknown_delivery_is_404(acme, globex):
    hook = register(acme)
    response = acme.server().post(f"/v1/webhooks/{hook['id']}/deliveries/dlv_nope/retry")
    assert response.status_code == 404 and response.json()["code"] == "delivery_not_found"


def test_delivery_log_rejects_an_unknown_status_filter_and_a_bad_cursor(acme):
    hook = register(acme)
    assert acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries?status=lost").status_code == 400
    response = acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries?cursor=!!")
    assert response.status_code == 400 and response.json()["code"] == "invalid_cursor"


def test_delivery_log_pages_with_a_cursor(acme):
    hook = register(acme)
    endpoint = WebhookEndpoint.objects.get(pk=hook["id"])
    for n in range(3):
        Delivery.objects.create(
            tenant=acme.tenant,
            endpoint=endpoint,
            event_id=f"evt_{n}",
            event_type="x",
            payload=b"{}",
            status="delivered",
        )
    first = acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries?limit=2").json()
    second = acme.server().get(f"/v1/webhooks/{hook['id']}/deliveries?limit=2&cursor={first['nextCursor']}").json()
    assert [d["eventId"] for d in first["deliveries"] + second["deliveries"]] == ["evt_2", "evt_1", "evt_0"]


def test_the_openapi_document_describes_every_webhook_operation(acme):
    from rest_framework.test import APIClient

    schema = APIClient().get("/v1/schema", HTTP_ACCEPT="application/json").json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values() if "operationId" in op}
    assert {
        "webhooks_list",
        "webhooks_create",
        "webhooks_get",
        "webhooks_update",
        "webhooks_delete",
        "webhooks_test",
        "webhooks_rotate_secret",
        "webhooks_deliveries_list",
        "webhooks_deliveries_retry",
    } <= operations


def test_a_delete_is_recorded_with_who_did_it(acme, caplog):
    caplog.set_level("INFO", logger="scaiwave.audit")
    hook = register(acme)

    assert acme.server().delete(f"/v1/webhooks/{hook['id']}").status_code == 204

    assert audit_traced(caplog, "webhook_deleted", "server")["id"] == str(hook["id"])
