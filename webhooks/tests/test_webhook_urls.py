"""Webhook URLs that cannot be sent as given are refused, and one bad URL never touches another delivery."""

from __future__ import annotations

import pytest
from django.db import transaction

from scaiwave.events.services import event_emit
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import deliveries_attempt, webhook_create
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    webhook_settings_fixture,
)

BAD_URLS = [
    "http://host/x\r\nX: 1",
    "http://host/x\nX: 1",
    "http://host/a b",
    "http://host/x\x01",
    "http://ho\tst/x",
    "http://host/\x7f",
    "http://host/x\u2028y",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_url_with_control_characters_or_spaces_is_refused_at_registration(acme, url):
    response = acme.server().post("/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_webhook_url"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_a_url_with_control_characters_is_refused_on_update(acme):
    hook = acme.server().post("/v1/webhooks", {"url": "https://example.com/hook"}, format="json").json()
    response = acme.server().patch(f"/v1/webhooks/{hook['id']}", {"url": "https://example.com/\r\nX: 1"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook_url"
    assert WebhookEndpoint.objects.get(pk=hook["id"]).url == "https://example.com/hook"


@pytest.mark.django_db
def test_a_unicode_host_is_stored_idna_encoded(acme, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    response = acme.server().post("/v1/webhooks", {"url": "https://bücher.example/hook?q=1"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["url"] == "https://xn--bcher-kva.example/hook?q=1"


@pytest.mark.django_db
def test_an_invalid_unicode_host_is_refused(acme):
    response = acme.server().post("/v1/webhooks", {"url": "https://a\u200b\u0301.example/hook"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_webhook_url"


def _store_bad_url(endpoint: WebhookEndpoint, url: str = "http://127.0.0.1:9/x\r\nX: 1") -> None:
    # As rows saved before the check existed hold them: written directly, past the service's validation.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=url)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
def test_the_test_send_to_a_stored_bad_url_reports_a_failure_not_a_500(acme):
    endpoint, _ = webhook_create(tenant=acme.tenant, url="http://127.0.0.1:9/hook")
    _store_bad_url(endpoint)
    response = acme.server().post(f"/v1/webhooks/{endpoint.pk}/test", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["delivered"] is False
    assert body["error"].startswith("invalid_url")
    assert Delivery.objects.get(pk=body["deliveryId"]).status == "failed"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhook_settings")
def test_a_bad_url_in_a_batch_fails_alone_and_the_healthy_deliveries_are_sent_once(acme, globex):
    with WebhookReceiver() as healthy, WebhookReceiver() as other_tenant:
        good, _ = webhook_create(tenant=acme.tenant, url=healthy.url)
        bad, _ = webhook_create(tenant=acme.tenant, url=healthy.url)
        other, _ = webhook_create(tenant=globex.tenant, url=other_tenant.url)
        WebhookEndpoint.objects.update(enabled=False)  # nothing is sent while the rows are made
        with transaction.atomic():
            first = event_emit(tenant=acme.tenant, type="room_created", data={"roomId": "a"})
            second = event_emit(tenant=globex.tenant, type="room_created", data={"roomId": "b"})
        for endpoint, event in ((good, first), (bad, first), (other, second)):
            Delivery.objects.create(
                tenant_id=endpoint.tenant_id,
                endpoint=endpoint,
                event_id=event.id,
                event_type=event.type,
                payload=b'{"id":"x"}',
            )
        WebhookEndpoint.objects.update(enabled=True)
        _store_bad_url(bad)
        ids = list(Delivery.objects.values_list("pk", flat=True))
        outcomes = deliveries_attempt(delivery_ids=ids)
        # The sweep would hand the same batch over again: nothing is sent twice.
        again = deliveries_attempt(delivery_ids=ids)
        assert len(healthy.wait_for(1)) == 1
        assert len(other_tenant.wait_for(1)) == 1
    rows = {d.endpoint_id: d for d in Delivery.objects.all()}
    assert outcomes[rows[good.pk].pk] == "delivered"
    assert outcomes[rows[other.pk].pk] == "delivered"
    assert outcomes[rows[bad.pk].pk] == "failed"
    assert set(again.values()) == {"skipped"}
    assert rows[bad.pk].status == "failed"
    assert rows[bad.pk].last_error.startswith("invalid_url")
    assert rows[bad.pk].locked_until is None
    assert (rows[good.pk].status, rows[other.pk].status) == ("delivered", "delivered")
    assert len(healthy.requests) == 1 and len(other_tenant.requests) == 1
