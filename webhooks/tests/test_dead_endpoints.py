"""Dead endpoints back off on their own: they never flood the worker nor delay anyone's healthy endpoints."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from livekit_emulator.testing import free_port
from scaiwave.events.services import event_emit
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import deliveries_requeue_due, webhook_create
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    webhook_settings_fixture,
)
from webhooks.tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_settings")]


def dead_urls(count: int) -> list[str]:
    """Half a name that never resolves, half a refused port on 127.0.0.1."""
    refused = free_port()  # nothing listens there
    return [
        f"http://hooks-{i}.does-not-exist.invalid/x" if i % 2 else f"http://127.0.0.1:{refused}/x{i}"
        for i in range(count)
    ]


def emit(tenant, n: int):
    with transaction.atomic():
        return event_emit(tenant=tenant, type="room_created", data={"roomId": f"r{n}"})


def test_a_failing_endpoint_has_one_attempt_in_flight_and_backs_off(acme, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [30.0, 60.0]
    [url] = dead_urls(1)
    dead, _ = webhook_create(tenant=acme.tenant, url=url)
    emit(acme.tenant, 0)  # the first failure starts the streak
    dead.refresh_from_db()
    assert dead.consecutive_failures == 1
    assert dead.retry_at is not None and dead.retry_at > timezone.now() + timedelta(seconds=20)
    for n in range(1, 6):
        emit(acme.tenant, n)
    # The new deliveries wait for the endpoint's backoff: nothing is sent, nothing is queued for them.
    assert Delivery.objects.filter(attempt_count=0).count() == 5
    assert deliveries_requeue_due() == 0
    # When the backoff has run out, the sweep sends one probe, not the whole backlog.
    WebhookEndpoint.objects.filter(pk=dead.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1), queued_at=None)
    assert deliveries_requeue_due() == 1
    dead.refresh_from_db()
    assert dead.consecutive_failures == 2
    assert dead.retry_at is not None and dead.retry_at > timezone.now() + timedelta(seconds=40)
    assert sum(Delivery.objects.values_list("attempt_count", flat=True)) == 2


def test_a_recovered_endpoint_gets_its_backlog(acme, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [30.0, 60.0]
    with WebhookReceiver(script=[503]) as flaky:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=flaky.url)
        for n in range(4):
            emit(acme.tenant, n)
        assert len(flaky.wait_for(1)) == 1
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
        Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1), queued_at=None)
        assert deliveries_requeue_due() == 1  # the probe
        assert deliveries_requeue_due() == 3  # it answered: the rest follows at once
        assert len(flaky.wait_for(5)) == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.retry_at) == (0, None)


def test_a_sweep_queues_no_more_than_its_bound(acme, settings):
    settings.WEBHOOK_SWEEP_MAX = 7
    with WebhookReceiver() as receiver:
        webhook_create(tenant=acme.tenant, url=receiver.url)
        WebhookEndpoint.objects.update(enabled=False)
        for n in range(20):
            emit(acme.tenant, n)
    WebhookEndpoint.objects.update(enabled=True)
    Delivery.objects.all().delete()
    endpoint = WebhookEndpoint.objects.get()
    Delivery.objects.bulk_create(
        [
            Delivery(
                tenant_id=endpoint.tenant_id,
                endpoint=endpoint,
                event_id=f"evt_{n}",
                event_type="room_created",
                payload=b"{}",
                queued_at=None,
            )
            for n in range(20)
        ]
    )
    with pytest.MonkeyPatch.context() as no_send:
        from webhooks.services import deliveries

        no_send.setattr(deliveries, "_enqueue", lambda ids, countdown=None: None)
        assert deliveries_requeue_due() == 7
        assert deliveries_requeue_due(broker_backlog=5) == 2
        assert deliveries_requeue_due(broker_backlog=100) == 0


@pytest.mark.slow
def test_twenty_dead_endpoints_do_not_delay_a_healthy_one(acme, globex, settings):
    """Fault test: 20 dead endpoints of one tenant, one healthy endpoint of another, a real worker and the
    sweep running; the healthy endpoint's p99 delivery latency stays under a second once the dead endpoints
    have been found dead (the first batch to them costs up to about a second more under heavy load)."""
    from scaiwave.celery import app

    with WebhookReceiver() as healthy:
        for url in dead_urls(20):
            webhook_create(tenant=acme.tenant, url=url)
        webhook_create(tenant=globex.tenant, url=healthy.url)
        sent: dict[str, float] = {}
        with celery_worker(settings), pytest.MonkeyPatch.context() as real_broker:
            real_broker.setattr(app.conf, "task_always_eager", False)
            emit(globex.tenant, -1)
            assert len(healthy.wait_for(1, timeout=120)) == 1  # the worker is up
            healthy.requests.clear()
            # The endpoints are known dead (each failed once), as after any first event in a deployment: the
            # measure is the steady state, not the first batch that finds them dead.
            emit(acme.tenant, -1)
            deadline = time.monotonic() + 60
            while WebhookEndpoint.objects.filter(tenant=acme.tenant, consecutive_failures=0).exists():
                assert time.monotonic() < deadline, "the dead endpoints were not tried"
                time.sleep(0.05)
            for n in range(60):
                emit(acme.tenant, n)
                emit(acme.tenant, 1000 + n)
                started = time.time()
                event = emit(globex.tenant, n)
                sent[event.id] = started
                deliveries_requeue_due()
                time.sleep(0.1)
            received = healthy.wait_for(60, timeout=30)
    latencies = sorted(request.at - sent[request.headers["webhook-id"]] for request in received)
    print(
        "SEQ",
        [
            round(r.at - sent[r.headers["webhook-id"]], 2)
            for r in sorted(received, key=lambda r: sent[r.headers["webhook-id"]])
        ],
    )
    assert len(latencies) == 60
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"healthy endpoint: median {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    assert p99 < 1.0
    attempts = sum(Delivery.objects.filter(tenant=acme.tenant).values_list("attempt_count", flat=True))
    assert attempts < 20 * 15  # each dead endpoint was tried a few times, not once per delivery and retry
