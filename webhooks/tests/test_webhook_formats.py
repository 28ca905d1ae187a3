"""Per-endpoint delivery format: Standard Webhooks (default) or rtcstack's own; client-chosen secrets."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from scaiwave.events.services import event_emit
from webhooks.models import Delivery
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    receiver_fixture,
    webhook_settings_fixture,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_settings")]


def register(creds, **body):
    return creds.server().post("/v1/webhooks", body, format="json")


def emit(tenant):
    with transaction.atomic():
        return event_emit(tenant=tenant, type="room_created", data={"roomId": "standup"})


def test_the_format_defaults_to_standard_and_is_shown(acme, receiver):
    response = register(acme, url=receiver.url)
    assert response.status_code == 201
    assert response.json()["format"] == "standard"
    assert acme.server().get(f"/v1/webhooks/{response.json()['id']}").json()["format"] == "standard"


@pytest.mark.parametrize("chosen", ["whsec_bXktb3duLXNlY3JldC0xMjMtNDU2Nzg5MA==", "bXktb3duLXNlY3JldC0xMjMtNDU2Nzg5MA"])
def test_a_secret_the_client_chose_verifies_with_the_standardwebhooks_library(acme, receiver, chosen):
    response = register(acme, url=receiver.url, secret=chosen)
    assert response.status_code == 201, response.content
    assert response.json()["secret"] == chosen
    emit(acme.tenant)
    [request] = receiver.wait_for(1)
    assert Webhook(chosen).verify(request.body, request.headers)["data"] == {"roomId": "standup"}


@pytest.mark.parametrize("chosen", ["my-own-secret-123", "whsec_c2hvcnQ=", "plain text secret"])
def test_a_standard_secret_the_library_cannot_read_the_same_way_is_refused(acme, receiver, chosen):
    response = register(acme, url=receiver.url, secret=chosen)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_secret"


def test_an_rtcstack_endpoint_gets_event_payload_and_delivery_id_signed_with_its_plain_secret(acme, receiver):
    response = register(acme, url=receiver.url, secret="my-own-secret-123", format="rtcstack")
    assert response.status_code == 201, response.content
    assert response.json()["format"] == "rtcstack"
    event = emit(acme.tenant)
    [request] = receiver.wait_for(1)
    body = json.loads(request.body)
    delivery = Delivery.objects.get(event_id=event.id)
    assert body == {"event": "room_created", "payload": {"roomId": "standup"}, "deliveryId": delivery.pk}
    expected = "sha256=" + hmac.new(b"my-own-secret-123", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-rtcstack-signature"] == expected
    assert "webhook-signature" not in request.headers


def test_the_test_send_uses_the_endpoints_format(acme, receiver):
    hook = register(acme, url=receiver.url, secret="my-own-secret-123", format="rtcstack").json()
    answer = acme.server().post(f"/v1/webhooks/{hook['id']}/test", {}, format="json").json()
    assert answer["delivered"] is True
    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["event"] == "webhook.test"
    assert request.headers["x-rtcstack-signature"].startswith("sha256=")


def test_the_format_can_be_changed_and_an_unknown_one_is_refused(acme, receiver):
    hook = register(acme, url=receiver.url).json()
    changed = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"format": "rtcstack"}, format="json")
    assert changed.status_code == 200 and changed.json()["format"] == "rtcstack"
    bad = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"format": "soap"}, format="json")
    assert bad.status_code == 400


def test_switching_to_standard_with_a_plain_secret_is_refused(acme, receiver):
    hook = register(acme, url=receiver.url, secret="my-own-secret-123", format="rtcstack").json()
    response = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"format": "standard"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_secret"
    assert acme.server().get(f"/v1/webhooks/{hook['id']}").json()["format"] == "rtcstack"
