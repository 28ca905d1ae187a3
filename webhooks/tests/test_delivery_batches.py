"""One task per event: its deliveries are claimed together, sent at once and recorded as answers come in."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from scaiwave.events.services import event_emit
from scaiwave.models import Event
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import deliveries_attempt, deliveries_requeue_due, webhook_create
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    webhook_settings_fixture,
)
from webhooks.tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_settings")]


def emit(tenant) -> Event:
    with transaction.atomic():
        return event_emit(tenant=tenant, type="room_created", data={"roomId": "standup"})


@pytest.fixture(name="tasks_run")
def tasks_run_fixture():
    """The (task name, args) of every Celery task run while the test runs (eagerly, in this process)."""
    seen: list[tuple[str, tuple]] = []

    def record(sender=None, args=(), **kwargs):
        seen.append((sender.name, tuple(args)))

    task_prerun.connect(record, weak=False)
    yield seen
    task_prerun.disconnect(record)


def test_an_events_deliveries_are_sent_by_one_task(acme, tasks_run):
    with WebhookReceiver() as first, WebhookReceiver() as second, WebhookReceiver() as third:
        endpoints = [webhook_create(tenant=acme.tenant, url=r.url)[0] for r in (first, second, third)]
        event = emit(acme.tenant)
        for receiver in (first, second, third):
            [request] = receiver.wait_for(1)
            assert request.headers["webhook-id"] == event.id
    deliveries = Delivery.objects.filter(event_id=event.id)
    assert sorted(d.endpoint_id for d in deliveries) == sorted(e.pk for e in endpoints)
    assert [name for name, _args in tasks_run] == ["webhooks.deliver_batch"]
    [(_name, (delivery_ids,))] = tasks_run
    assert sorted(delivery_ids) == sorted(d.pk for d in deliveries)
    assert {(d.status, d.attempt_count, d.last_status_code) for d in deliveries} == {("delivered", 1, 200)}


def test_a_batch_where_some_endpoints_fail_records_each_outcome(acme):
    with (
        WebhookReceiver() as healthy,
        WebhookReceiver(script=[500]) as flaky,
        WebhookReceiver(script=[400]) as refusing,
    ):
        ok, ok_secret = webhook_create(tenant=acme.tenant, url=healthy.url)
        retried, _ = webhook_create(tenant=acme.tenant, url=flaky.url)
        refused, _ = webhook_create(tenant=acme.tenant, url=refusing.url)
        emit(acme.tenant)
        assert len(healthy.wait_for(1)) == 1
        assert len(flaky.wait_for(2)) == 2  # a 500, then the retry's 200
        assert len(refusing.wait_for(1)) == 1
        time.sleep(0.2)
        assert (len(healthy.requests), len(flaky.requests), len(refusing.requests)) == (1, 2, 1)
    Webhook(ok_secret).verify(healthy.requests[0].body, healthy.requests[0].headers)
    rows = {d.endpoint_id: d for d in Delivery.objects.all()}
    assert (rows[ok.pk].status, rows[ok.pk].attempt_count, rows[ok.pk].last_status_code) == ("delivered", 1, 200)
    assert rows[ok.pk].delivered_at is not None and rows[ok.pk].locked_until is None
    assert (rows[retried.pk].status, rows[retried.pk].attempt_count) == ("delivered", 2)
    assert (rows[refused.pk].status, rows[refused.pk].attempt_count, rows[refused.pk].last_status_code) == (
        "failed",
        1,
        400,
    )
    assert rows[refused.pk].last_error == "http_status: 400" and rows[refused.pk].last_response_body
    streaks = dict(WebhookEndpoint.objects.values_list("pk", "consecutive_failures"))
    assert streaks == {ok.pk: 0, retried.pk: 0, refused.pk: 1}


def test_a_hanging_receiver_does_not_hold_back_the_rest_of_its_batch(acme, settings):
    settings.WEBHOOK_TIMEOUT = 1.0
    with WebhookReceiver(script=["hang"]) as slow, WebhookReceiver() as fast, WebhookReceiver() as faster:
        hanging, _ = webhook_create(tenant=acme.tenant, url=slow.url)
        webhook_create(tenant=acme.tenant, url=fast.url)
        webhook_create(tenant=acme.tenant, url=faster.url)
        event = emit(acme.tenant)
        assert len(slow.wait_for(2)) == 2  # timed out, then retried
    for delivery in Delivery.objects.exclude(endpoint=hanging):
        # Sent alongside the hanging request and recorded as soon as answered, not after the time-out.
        assert delivery.status == "delivered" and delivery.attempt_count == 1
        assert delivery.delivered_at is not None
        assert delivery.delivered_at - event.created_at < timedelta(seconds=0.8)
    slow_delivery = Delivery.objects.get(endpoint=hanging)
    assert (slow_delivery.status, slow_delivery.attempt_count) == ("delivered", 2)


def test_a_batch_claimed_by_a_worker_that_died_is_sent_again_by_the_sweep(acme, tasks_run):
    from webhooks.services import deliveries

    with ExitStack() as running:
        receivers = [running.enter_context(WebhookReceiver()) for _ in range(3)]
        secrets = [webhook_create(tenant=acme.tenant, url=r.url)[1] for r in receivers]
        # The worker "dies" after its claim, before any request goes out.
        with pytest.MonkeyPatch.context() as dying, pytest.raises(SystemExit):
            dying.setattr(deliveries, "post_signed_many", lambda requests: (_ for _ in ()).throw(SystemExit("killed")))
            emit(acme.tenant)
        event = Event.objects.get(tenant=acme.tenant)
        rows = list(Delivery.objects.filter(event_id=event.id))
        assert len(rows) == 3
        assert {(d.status, d.attempt_count) for d in rows} == {("pending", 1)}
        assert all(d.locked_until is not None and d.locked_until > timezone.now() for d in rows)

        # While the batch's lease runs nobody sends its rows, not even another batch that names them.
        ids = [d.pk for d in rows]
        assert set(deliveries_attempt(delivery_ids=ids).values()) == {"skipped"}
        assert deliveries_requeue_due() == 0
        # Once it ran out, the sweep queues the three again, as one batch, and each is delivered once.
        Delivery.objects.filter(pk__in=ids).update(locked_until=timezone.now() - timedelta(seconds=1))
        tasks_run.clear()
        assert deliveries_requeue_due() == 3
        assert [(name, sorted(args[0])) for name, args in tasks_run] == [("webhooks.deliver_batch", sorted(ids))]
        for receiver, secret in zip(receivers, secrets, strict=True):
            [request] = receiver.wait_for(1)
            Webhook(secret).verify(request.body, request.headers)
    assert {(d.status, d.attempt_count) for d in Delivery.objects.filter(event_id=event.id)} == {("delivered", 2)}


def test_attempting_a_batch_twice_sends_each_delivery_once(acme):
    with WebhookReceiver() as first, WebhookReceiver() as second:
        webhook_create(tenant=acme.tenant, url=first.url)
        webhook_create(tenant=acme.tenant, url=second.url)
        event = emit(acme.tenant)
        first.wait_for(1)
        second.wait_for(1)
        ids = list(Delivery.objects.filter(event_id=event.id).values_list("pk", flat=True))
        assert deliveries_attempt(delivery_ids=[*ids, "dlv_unknown"]) == {
            **dict.fromkeys(ids, "skipped"),
            "dlv_unknown": "skipped",
        }
        time.sleep(0.2)
        assert (len(first.requests), len(second.requests)) == (1, 1)


def test_a_batch_for_a_disabled_endpoint_marks_its_delivery_dead_and_sends_the_others(acme):
    with WebhookReceiver() as live, WebhookReceiver() as switched_off:
        on, _ = webhook_create(tenant=acme.tenant, url=live.url)
        off, _ = webhook_create(tenant=acme.tenant, url=switched_off.url)
        # Rows written for an event while both were enabled; the endpoint is disabled before the send.
        ids = [
            Delivery.objects.create(
                tenant=acme.tenant, endpoint=endpoint, event_id="evt_1", event_type="room_created", payload=b"{}"
            ).pk
            for endpoint in (on, off)
        ]
        WebhookEndpoint.objects.filter(pk=off.pk).update(enabled=False, disabled_reason="disabled by the API")
        assert deliveries_attempt(delivery_ids=ids) == {ids[0]: "delivered", ids[1]: "dead"}
        assert len(live.wait_for(1)) == 1
        time.sleep(0.2)
        assert switched_off.requests == []
    dead = Delivery.objects.get(endpoint=off)
    assert dead.status == "dead" and dead.last_error == "webhook disabled: disabled by the API"


@pytest.mark.slow
def test_a_real_worker_killed_mid_batch_keeps_what_was_answered_and_the_sweep_sends_the_rest(acme, settings):
    """A Celery worker sends a batch of three; two answer, one hangs; the worker is SIGKILLed. The two answered
    deliveries stay delivered (recorded as they came in, not sent again); the sweep re-sends the third."""
    from scaiwave.celery import app

    with ExitStack() as running:
        hanging = running.enter_context(WebhookReceiver(script=["hang"]))
        answering = [running.enter_context(WebhookReceiver()) for _ in range(2)]
        stuck, secret = webhook_create(tenant=acme.tenant, url=hanging.url)
        for receiver in answering:
            webhook_create(tenant=acme.tenant, url=receiver.url)
        with celery_worker(settings):
            with pytest.MonkeyPatch.context() as real_broker:
                real_broker.setattr(app.conf, "task_always_eager", False)
                event = emit(acme.tenant)
            assert len(hanging.wait_for(1, timeout=90)) == 1  # the worker is mid-batch
            deadline = time.monotonic() + 30
            while Delivery.objects.filter(status="delivered").count() < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        # Leaving the block SIGKILLed the worker and its pool process.
        answered = Delivery.objects.exclude(endpoint=stuck)
        assert {(d.status, d.attempt_count) for d in answered} == {("delivered", 1)}
        unanswered = Delivery.objects.get(endpoint=stuck)
        assert (unanswered.status, unanswered.attempt_count) == ("pending", 1)
        assert deliveries_requeue_due() == 0  # the lease still runs
        time.sleep(5.2)
        assert deliveries_requeue_due() == 1
        requests = hanging.wait_for(2)
        time.sleep(0.2)
        assert [len(receiver.requests) for receiver in answering] == [1, 1]
    assert [r.headers["webhook-id"] for r in requests] == [event.id, event.id]
    Webhook(secret).verify(requests[1].body, requests[1].headers)
    unanswered.refresh_from_db()
    assert (unanswered.status, unanswered.attempt_count) == ("delivered", 2)


class TricklingReceiver:
    """Answers a byte every 0.2 s for `seconds`: each read beats the per-read time-out, the whole never ends in time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _address = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * int(self.seconds / 0.2)
                for byte in answer:
                    if self._stop.wait(0.2):
                        break
                    conn.sendall(bytes([byte]))

    def __enter__(self) -> TricklingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


def test_a_receiver_trickling_its_answer_is_cut_off_so_the_batch_ends_within_the_time_limit(acme, settings):
    settings.WEBHOOK_TIMEOUT = 1.0
    settings.WEBHOOK_RETRY_SCHEDULE = [3600.0]  # no retry during the test
    with TricklingReceiver(seconds=30) as trickling, WebhookReceiver() as healthy:
        slow, _ = webhook_create(tenant=acme.tenant, url=trickling.url)
        webhook_create(tenant=acme.tenant, url=healthy.url)
        started = time.monotonic()
        emit(acme.tenant)
        took = time.monotonic() - started
        assert len(healthy.requests) == 1
    assert took < 1.0 + 2.0 + 1.0  # WEBHOOK_TIMEOUT, the straggler grace, slack for a busy machine
    cut_off = Delivery.objects.get(endpoint=slow)
    assert (cut_off.status, cut_off.attempt_count, cut_off.locked_until) == ("pending", 1, None)
    assert cut_off.last_error.startswith("timeout") and cut_off.next_attempt_at > timezone.now()
    assert Delivery.objects.exclude(endpoint=slow).get().status == "delivered"


def test_a_single_delivery_to_a_trickling_receiver_is_cut_off_too(acme, settings):
    from webhooks.services import delivery_attempt

    settings.WEBHOOK_TIMEOUT = 1.0
    settings.WEBHOOK_RETRY_SCHEDULE = [3600.0]  # no retry during the test
    with TricklingReceiver(seconds=30) as trickling:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=trickling.url)
        delivery = Delivery.objects.create(
            tenant=acme.tenant, endpoint=endpoint, event_id="evt_1", event_type="room_created", payload=b"{}"
        )
        started = time.monotonic()
        assert delivery_attempt(delivery_id=delivery.pk) == "retry"
        assert time.monotonic() - started < 1.0 + 2.0 + 1.0
