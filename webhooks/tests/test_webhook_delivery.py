"""Outbound deliveries end to end: outbox event -> Delivery rows -> signed POSTs to a real receiver."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from scaiwave.events.services import event_emit, events_redispatch
from scaiwave.models import Event
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import (
    deliveries_requeue_due,
    delivery_attempt,
    retry_delay,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
)
from webhooks.tests.receivers import (  # noqa: F401 - fixtures
    WebhookReceiver,
    receiver_fixture,
    webhook_settings_fixture,
)
from webhooks.tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_settings")]


def emit(tenant, type_="room_created", data=None) -> Event:
    with transaction.atomic():
        return event_emit(tenant=tenant, type=type_, data=data or {"roomId": "standup"})


def drain(timeout: float = 10.0) -> None:
    """Play the beat: sweep due deliveries until none is pending."""
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status=Delivery.Status.PENDING).exists() and time.monotonic() < deadline:
        deliveries_requeue_due()
        time.sleep(0.05)


def test_delivery_is_signed_so_a_standard_webhooks_library_verifies_it(acme, receiver):
    endpoint, secret = webhook_create(tenant=acme.tenant, url=receiver.url)
    event = emit(acme.tenant, data={"roomId": "standup", "n": 1})
    [request] = receiver.wait_for(1)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event.id
    assert payload["type"] == "room_created"
    assert payload["data"] == {"roomId": "standup", "n": 1}
    assert payload["timestamp"].endswith("Z")
    assert request.headers["webhook-id"] == event.id
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == "delivered" and delivery.attempt_count == 1 and delivery.last_status_code == 200


def test_tampered_body_or_wrong_secret_fails_verification(acme, receiver):
    _endpoint, secret = webhook_create(tenant=acme.tenant, url=receiver.url)
    emit(acme.tenant)
    [request] = receiver.wait_for(1)
    tampered = request.body.replace(b"standup", b"stand-up")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=").verify(request.body, request.headers)


def test_a_client_chosen_secret_verifies_with_the_standardwebhooks_library_as_given(acme, receiver):
    chosen = "whsec_bXktb3duLXNlY3JldC0xMjMtNDU2Nzg5MA=="
    webhook_create(tenant=acme.tenant, url=receiver.url, secret=chosen)
    emit(acme.tenant)
    [request] = receiver.wait_for(1)
    assert Webhook(chosen).verify(request.body, request.headers)["type"] == "room_created"


def test_rotation_signs_with_both_secrets_during_the_grace_period(acme, receiver, settings):
    endpoint, old_secret = webhook_create(tenant=acme.tenant, url=receiver.url)
    _endpoint, new_secret = webhook_rotate_secret(endpoint=endpoint)
    emit(acme.tenant)
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)

    # After the grace period only the new secret signs.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    emit(acme.tenant)
    request = receiver.wait_for(2)[1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request.body, request.headers)


def test_only_enabled_endpoints_whose_filter_matches_get_the_event(acme, globex):
    with (
        WebhookReceiver() as wanted,
        WebhookReceiver() as other_type,
        WebhookReceiver() as disabled,
        WebhookReceiver() as other_tenant,
    ):
        webhook_create(tenant=acme.tenant, url=wanted.url, events=["recording_ready", "room_created"])
        webhook_create(tenant=acme.tenant, url=other_type.url, events=["room_closed"])
        off, _ = webhook_create(tenant=acme.tenant, url=disabled.url)
        WebhookEndpoint.objects.filter(pk=off.pk).update(enabled=False)
        webhook_create(tenant=globex.tenant, url=other_tenant.url)
        emit(acme.tenant)
        assert len(wanted.wait_for(1)) == 1
        time.sleep(0.2)
        assert other_type.requests == [] and disabled.requests == [] and other_tenant.requests == []


def test_failures_of_transcription_and_analysis_reach_every_event_subscribers(acme, receiver):
    """A receiver waiting for transcription_completed or analysis_completed hears when none will come."""
    webhook_create(tenant=acme.tenant, url=receiver.url)  # events defaults to ["*"]
    emit(acme.tenant, "transcription_failed", {"transcriptionId": "tr_1", "status": "failed"})
    emit(acme.tenant, "analysis_failed", {"callId": "c1", "status": "FAILED"})
    emit(acme.tenant, "transcription.segment", {"text": "live only"})  # WebSocket-only: never a webhook
    requests = receiver.wait_for(2)
    assert sorted(json.loads(r.body)["type"] for r in requests) == ["analysis_failed", "transcription_failed"]
    time.sleep(0.2)
    assert len(receiver.requests) == 2


def test_an_endpoint_deleted_while_an_event_is_dispatched_fails_nothing(acme, receiver, monkeypatch):
    """Found by make check-api's stateful phase: an endpoint deleted between the read of the matching endpoints and
    the commit failed the deliveries' foreign key, and with it the event's dispatch to every other endpoint."""
    from webhooks.services import deliveries

    kept, _ = webhook_create(tenant=acme.tenant, url=receiver.url)
    doomed, _ = webhook_create(tenant=acme.tenant, url=receiver.url + "/doomed")
    matches = deliveries.filter_matches

    def deleted_meanwhile(filters, event_type):  # runs after the endpoints were read: the delete lands here
        if WebhookEndpoint.objects.filter(pk=doomed.pk).exists():
            webhook_delete(endpoint=WebhookEndpoint.objects.get(pk=doomed.pk), actor="server")
        return matches(filters, event_type)

    monkeypatch.setattr(deliveries, "filter_matches", deleted_meanwhile)
    event = emit(acme.tenant)
    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["id"] == event.id
    assert list(Delivery.objects.values_list("endpoint_id", flat=True)) == [kept.pk]
    assert Event.objects.get(pk=event.pk).dispatched_at is not None  # dispatched, not left for the redispatch


def test_redispatching_an_event_creates_no_second_delivery(acme, receiver):
    webhook_create(tenant=acme.tenant, url=receiver.url)
    event = emit(acme.tenant)
    receiver.wait_for(1)
    Event.objects.filter(pk=event.pk).update(dispatched_at=None)
    assert events_redispatch(older_than_seconds=0) == 1
    time.sleep(0.2)
    assert Delivery.objects.filter(event_id=event.id).count() == 1
    assert len(receiver.requests) == 1


def test_receiver_failing_with_500s_then_recovering_gets_the_event_exactly_once(acme):
    with WebhookReceiver(script=[500, 502, 503]) as flaky:
        endpoint, secret = webhook_create(tenant=acme.tenant, url=flaky.url)
        event = emit(acme.tenant)
        drain()
        requests = flaky.wait_for(4)
    delivered = [r for r in requests if r.headers["webhook-id"] == event.id]
    assert len(delivered) == 4  # three failed attempts, one success, nothing more
    for request in delivered:
        Webhook(secret).verify(request.body, request.headers)
    assert len({r.body for r in delivered}) == 1  # the payload is fixed at creation
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("delivered", 4, 200)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_a_4xx_answer_is_final_and_its_body_is_kept_truncated(acme, settings):
    settings.WEBHOOK_RESPONSE_BODY_MAX = 100
    with WebhookReceiver(script=[400]) as refusing:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=refusing.url)
        emit(acme.tenant)
        drain()
        assert len(refusing.wait_for(1)) == 1
        time.sleep(0.2)
        assert len(refusing.requests) == 1
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.last_status_code) == ("failed", 400)
    assert delivery.last_response_body == "x" * 100


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_retried(acme, status):
    with WebhookReceiver(script=[status]) as busy:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=busy.url)
        emit(acme.tenant)
        drain()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)


def test_a_redirect_is_not_followed(acme):
    with WebhookReceiver() as elsewhere, WebhookReceiver(script=[("redirect", "PLACEHOLDER")]) as redirecting:
        redirecting.script = [("redirect", elsewhere.url)]
        endpoint, _ = webhook_create(tenant=acme.tenant, url=redirecting.url)
        emit(acme.tenant)
        drain()
        time.sleep(0.2)
        assert elsewhere.requests == []
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.last_status_code) == ("failed", 307)


def test_a_hanging_receiver_times_out_and_the_delivery_is_retried(acme, settings):
    settings.WEBHOOK_TIMEOUT = 0.5
    with WebhookReceiver(script=["hang"]) as slow:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=slow.url)
        started = time.monotonic()
        emit(acme.tenant)
        drain()
        assert len(slow.wait_for(2)) == 2
    assert time.monotonic() - started < 5
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)


def test_retries_stop_after_the_schedule_and_the_delivery_is_dead(acme, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [0.01, 0.01]
    with WebhookReceiver(script=[500] * 10) as down:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=down.url)
        emit(acme.tenant)
        drain()
        assert len(down.requests) == 3
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("dead", 3, None)


def test_delivery_whose_worker_died_mid_send_is_sent_again_by_the_sweep(acme, receiver):
    from webhooks.services import deliveries as services

    endpoint, secret = webhook_create(tenant=acme.tenant, url=receiver.url)
    # The worker "dies" after claiming: the task queued on creation claims the attempt, never sends.
    with pytest.MonkeyPatch.context() as dying, pytest.raises(SystemExit):
        dying.setattr(services, "post_signed_many", lambda requests: (_ for _ in ()).throw(SystemExit("killed")))
        emit(acme.tenant)
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and delivery.attempt_count == 1 and delivery.locked_until is not None

    # While the lease runs, nobody else sends it.
    assert delivery_attempt(delivery_id=delivery.pk) == "skipped"
    assert deliveries_requeue_due() == 0
    # Once the lease is over, the beat sweep queues it again and it is delivered.
    Delivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert deliveries_requeue_due() == 1
    [request] = receiver.wait_for(1)
    Webhook(secret).verify(request.body, request.headers)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)


def forget_broker_connections(app) -> None:
    app._pool = None
    app.amqp._producer_pool = None


def test_events_written_while_the_broker_is_down_are_all_delivered_later(acme, receiver):
    from scaiwave.celery import app

    webhook_create(tenant=acme.tenant, url=receiver.url)
    # The broker is unreachable: no eager shortcut, a Redis URL nothing listens on, no publish retries.
    with pytest.MonkeyPatch.context() as down:
        down.setattr(app.conf, "task_always_eager", False)
        down.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
        down.setattr(app.conf, "task_publish_retry", False)
        down.setattr(app.conf, "broker_transport_options", {"max_retries": 1, "interval_start": 0, "interval_max": 0})
        forget_broker_connections(app)
        events = [emit(acme.tenant, data={"n": n}) for n in range(3)]
    forget_broker_connections(app)
    for event in events:
        event.refresh_from_db()
        assert event.dispatched_at is None and event.last_dispatch_error  # the sink failed: kept in the outbox
    assert Delivery.objects.count() == 3 and receiver.requests == []

    # The broker is back: the outbox re-dispatcher runs the sink again; nothing is lost or doubled.
    assert events_redispatch(older_than_seconds=0) == 3
    drain()
    received = receiver.wait_for(3)
    assert sorted(json.loads(r.body)["id"] for r in received) == sorted(e.id for e in events)
    assert Delivery.objects.filter(status="delivered").count() == 3


def test_endpoint_failing_for_a_day_is_disabled_with_a_notice_event(acme, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_RETRY_SCHEDULE = []
    with WebhookReceiver(script=[500] * 10) as down, WebhookReceiver() as watcher:
        endpoint, _ = webhook_create(tenant=acme.tenant, url=down.url)
        webhook_create(tenant=acme.tenant, url=watcher.url, events=["webhook.disabled"])
        emit(acme.tenant)
        # A failing endpoint's later deliveries are sent by the sweep, one at a time (no backoff here).
        for _ in range(2):
            emit(acme.tenant)
            assert deliveries_requeue_due() == 1
        endpoint.refresh_from_db()
        # Three failures, but not yet over a day: still enabled.
        assert endpoint.enabled and endpoint.consecutive_failures == 3
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(days=1, seconds=1)
        )
        emit(acme.tenant)
        assert deliveries_requeue_due() == 1
        endpoint.refresh_from_db()
        assert not endpoint.enabled and "failed attempts" in endpoint.disabled_reason and endpoint.disabled_at
        [notice] = watcher.wait_for(1)
        body = json.loads(notice.body)
        assert body["type"] == "webhook.disabled" and body["data"]["webhookId"] == endpoint.id
        emit(acme.tenant)
        assert deliveries_requeue_due() == 0
        time.sleep(0.2)
        assert len(down.requests) == 4  # a disabled endpoint gets nothing more


def test_default_retry_schedule_spans_about_three_days(settings):
    from scaiwave.settings import WEBHOOK_RETRY_SCHEDULE

    settings.WEBHOOK_RETRY_SCHEDULE = WEBHOOK_RETRY_SCHEDULE
    settings.WEBHOOK_RETRY_JITTER = 0.0
    total = sum(retry_delay(n) or 0 for n in range(1, len(WEBHOOK_RETRY_SCHEDULE) + 1))
    assert 2.5 * 86400 < total < 3.5 * 86400
    assert retry_delay(len(WEBHOOK_RETRY_SCHEDULE) + 1) is None
    settings.WEBHOOK_RETRY_JITTER = 0.2
    assert 4.0 <= (retry_delay(1) or 0) <= 6.0


@pytest.mark.slow
def test_a_real_worker_killed_mid_delivery_loses_nothing(acme, settings):
    """A Celery worker process is SIGKILLed while its request hangs; the sweep sends the delivery again."""
    from scaiwave.celery import app

    with WebhookReceiver(script=["hang"]) as receiver:
        endpoint, secret = webhook_create(tenant=acme.tenant, url=receiver.url)
        with celery_worker(settings):
            with pytest.MonkeyPatch.context() as real_broker:
                real_broker.setattr(app.conf, "task_always_eager", False)
                event = emit(acme.tenant)
            assert len(receiver.wait_for(1, timeout=90)) == 1  # the worker is mid-send; leaving SIGKILLs it
        delivery = Delivery.objects.get(endpoint=endpoint)
        assert delivery.status == "pending" and delivery.attempt_count == 1
        assert deliveries_requeue_due() == 0  # the lease still runs
        time.sleep(5.2)
        assert deliveries_requeue_due() == 1
        requests = receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in requests] == [event.id, event.id]
    Webhook(secret).verify(requests[1].body, requests[1].headers)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)


def test_events_outside_the_webhook_list_are_not_delivered_even_to_a_wildcard(acme, receiver):
    webhook_create(tenant=acme.tenant, url=receiver.url, events=["*"])
    emit(acme.tenant, "transcription.segment", {"text": "hello"})
    emit(acme.tenant, "swp.call.invite", {"callId": "call-1"})
    [request] = receiver.wait_for(1)
    time.sleep(0.2)
    assert len(receiver.requests) == 1 and json.loads(request.body)["type"] == "swp.call.invite"


def test_beat_sweeps_webhooks_and_the_outbox_feeds_them():
    from scaiwave.settings import CELERY_BEAT_SCHEDULE, EVENT_SINKS

    assert CELERY_BEAT_SCHEDULE["webhooks-sweep"]["task"] == "webhooks.sweep"
    assert "webhooks.services.deliveries_create_for_event" in EVENT_SINKS


def test_sweep_does_not_copy_tasks_into_a_backlogged_broker(acme, receiver, settings):
    settings.WEBHOOK_REQUEUE_AFTER = 120
    endpoint, _ = webhook_create(tenant=acme.tenant, url=receiver.url)
    now = timezone.now()

    def pending(event_id: str, queued_seconds_ago: float | None) -> Delivery:
        return Delivery.objects.create(
            tenant=acme.tenant,
            endpoint=endpoint,
            event_id=event_id,
            event_type="room_created",
            payload=b"{}",
            next_attempt_at=now - timedelta(hours=2),
            queued_at=None if queued_seconds_ago is None else now - timedelta(seconds=queued_seconds_ago),
        )

    recent = pending("evt_a", 600)  # queued 10 minutes ago: past WEBHOOK_REQUEUE_AFTER, within the backlog's 20 minutes
    pending("evt_b", None)  # a never-queued retry
    pending("evt_c", 3600)  # queued an hour ago: its task is taken to be lost, backlog or not
    # With a backlog, a recently queued row is taken to be waiting in it; the others are queued.
    assert deliveries_requeue_due(broker_backlog=1) == 2
    assert sorted(r.headers["webhook-id"] for r in receiver.wait_for(2)) == ["evt_b", "evt_c"]
    assert deliveries_requeue_due() == 1  # no backlog: the stale one is queued again
    assert sorted(r.headers["webhook-id"] for r in receiver.wait_for(3)) == ["evt_a", "evt_b", "evt_c"]
    recent.refresh_from_db()
    assert recent.status == "delivered"
