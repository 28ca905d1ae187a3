"""Deleting an endpoint while a delivery for it is being added (a test send, found by `make check-api` as a 500:
the deferred foreign key failed at COMMIT)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from scaiwave.crypto import encrypt_secret
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import webhook_delete

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_delivery_added_while_the_endpoint_is_deleted_goes_with_it(acme):
    endpoint = WebhookEndpoint.objects.create(
        tenant=acme.tenant, url="https://hooks.example.com/x", secret_encrypted=encrypt_secret("whsec_race")
    )
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def add_delivery_like_a_test_send() -> None:
        try:
            with transaction.atomic():
                WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
                Delivery.objects.create(
                    tenant=acme.tenant, endpoint=endpoint, event_id="evt_race", event_type="webhook.test", payload=b"{}"
                )
                locked.set()
                release.wait(10)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def delete() -> None:
        try:
            webhook_delete(endpoint=endpoint, actor="server")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    adder = threading.Thread(target=add_delivery_like_a_test_send)
    adder.start()
    assert locked.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    deleter.join(0.5)
    assert deleter.is_alive(), "the delete should wait for the send that holds the endpoint"
    release.set()
    adder.join(10)
    deleter.join(10)

    assert errors == []
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not Delivery.objects.filter(event_id="evt_race").exists()
