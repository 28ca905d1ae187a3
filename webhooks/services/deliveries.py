"""Outbound deliveries: Delivery rows from the outbox, sending, retries and the sweep.

A Delivery is created for every enabled endpoint whose filter matches an outbox event
(`deliveries_create_for_event`, an EVENT_SINK). Its payload is fixed then. Each attempt is
claimed by a conditional UPDATE (`deliveries_attempt`: one per batch, as one task sends an event's
deliveries concurrently), sent with Standard Webhooks signatures, and recorded; failures are
retried on WEBHOOK_RETRY_SCHEDULE. The database is the only copy of what is owed:
`deliveries_requeue_due` (beat) queues whatever is due and has no live task, so a lost broker
message, a dead worker or a restarted Redis delays a delivery, never drops it.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from scaiwave.api.errors import ProblemError
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.ids import new_id
from scaiwave.models import Event
from webhooks.events import TEST_EVENT_TYPE, WEBHOOK_DISABLED, filter_matches
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.signing import rtcstack_signature, signed_headers
from webhooks.transport import SendResult, SignedRequest, post_signed, post_signed_many

logger = logging.getLogger("scaiwave.webhooks")


# --- test sends ---------------------------------------------------------------------------------


def webhook_send_test(*, endpoint: WebhookEndpoint) -> Delivery:
    """Send one signed `webhook.test` delivery now, in this process, bounded by WEBHOOK_TIMEOUT.

    The attempt is recorded in the delivery log; it is not retried.
    """
    event_id = new_id("evt_test_")
    now = timezone.now()
    payload = _payload(event_id=event_id, event_type=TEST_EVENT_TYPE, timestamp=now, data={"webhookId": endpoint.id})
    with transaction.atomic():
        # Share-locked against webhook_delete: the delivery is added only while the endpoint exists.
        if not WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint.pk).exists():
            raise ProblemError(404, "webhook_not_found", "Webhook not found")
        delivery = Delivery.objects.create(
            tenant_id=endpoint.tenant_id,
            endpoint=endpoint,
            event_id=event_id,
            event_type=TEST_EVENT_TYPE,
            payload=payload,
            next_attempt_at=None,
            queued_at=None,
        )
    token = secrets.token_hex(8)
    Delivery.objects.filter(pk=delivery.pk).update(
        attempt_count=1,
        last_attempt_at=now,
        claim_token=token,
        locked_until=now + timedelta(seconds=settings.WEBHOOK_SEND_LEASE_SECONDS),
    )
    result = _send(endpoint=endpoint, message_id=event_id, body=payload, delivery_id=delivery.pk)
    _record(delivery_id=delivery.pk, endpoint=endpoint, token=token, result=result, attempt=1, retries=False)
    try:
        delivery.refresh_from_db()
    except Delivery.DoesNotExist:  # the endpoint was deleted while the test was being sent
        raise ProblemError(404, "webhook_not_found", "Webhook not found") from None
    return delivery


# --- deliveries from the outbox -----------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _payload(*, event_id: str, event_type: str, timestamp: datetime, data: Any) -> bytes:
    body = {"id": event_id, "type": event_type, "timestamp": _iso(timestamp), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def deliveries_create_for_event(event: Event) -> None:
    """EVENT_SINK: one pending Delivery per enabled, matching endpoint of the event's tenant.

    Idempotent: the (endpoint, event) unique constraint makes a re-dispatched event add nothing;
    still-pending deliveries of the event are queued again, which is harmless (an attempt is
    claimed before it is sent). Raises if the broker refuses the tasks, so the outbox keeps the
    event for re-dispatch; the rows are already committed, and the sweep would send them anyway.
    """
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(tenant_id=event.tenant_id, enabled=True).only(
            "id", "events", "consecutive_failures"
        )
        if filter_matches(endpoint.events, event.type)
    ]
    if not endpoints:
        return
    payload = _payload(event_id=event.id, event_type=event.type, timestamp=event.created_at, data=event.data)
    now = timezone.now()
    with transaction.atomic():
        present = _endpoints_kept(endpoint.id for endpoint in endpoints)
        endpoints = [endpoint for endpoint in endpoints if endpoint.id in present]
        if not endpoints:
            return
        Delivery.objects.bulk_create(
            [
                Delivery(
                    tenant_id=event.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    event_type=event.type,
                    payload=payload,
                    next_attempt_at=now,
                    # A failing endpoint's delivery is not queued: the sweep sends it when the endpoint's
                    # backoff allows, one attempt at a time (see _claim).
                    queued_at=None if endpoint.consecutive_failures else now,
                )
                for endpoint in endpoints
            ],
            ignore_conflicts=True,
        )
        healthy = [endpoint.id for endpoint in endpoints if not endpoint.consecutive_failures]
        # Looked up by the unique (endpoint, event) key alone and filtered here: with the status in the
        # query the planner also scans the partial due index, slow while it holds dead entries (_CLAIM_SQL).
        pending = [
            pk
            for pk, status in Delivery.objects.filter(event_id=event.id, endpoint_id__in=healthy).values_list(
                "pk", "status"
            )
            if status == Delivery.Status.PENDING
        ]
        transaction.on_commit(lambda: _enqueue(pending))


_KEY_SHARE_SQL = "SELECT id FROM {table} WHERE id IN ({ids}) FOR KEY SHARE"


def _endpoints_kept(endpoint_ids: Iterable[str]) -> set[str]:
    """Of these endpoints, the ones that still exist, kept so until the caller's transaction ends.

    Without it an endpoint deleted between the read of the matching endpoints and the commit failed the
    deliveries' deferred foreign key, and the whole event's dispatch with it (schemathesis' stateful phase
    deleted webhooks while events were produced). On PostgreSQL the rows are locked FOR KEY SHARE:
    webhook_delete's row lock waits for this transaction, then deletes what it added, and concurrent
    dispatches do not wait for one another. Elsewhere (SQLite, embedded) the re-read narrows the window."""
    ids = list(endpoint_ids)
    if connection.vendor != "postgresql":
        return set(WebhookEndpoint.objects.filter(pk__in=ids).values_list("pk", flat=True))
    sql = _KEY_SHARE_SQL.format(table=WebhookEndpoint._meta.db_table, ids=", ".join(["%s"] * len(ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return {row[0] for row in cursor.fetchall()}


def _enqueue(delivery_ids: list[str], *, countdown: float | None = None) -> None:
    """Queue the deliveries: one `webhooks.deliver_batch` task per WEBHOOK_BATCH_SIZE ids (sent at
    once by one worker), or one `webhooks.deliver` for a single id."""
    from scaiwave.celery import app
    from webhooks.tasks import deliver, deliver_batch

    if not delivery_ids:
        return
    size = settings.WEBHOOK_BATCH_SIZE
    # One broker connection for all the messages instead of one pool round-trip per message.
    with app.producer_or_acquire() as producer:
        if len(delivery_ids) == 1:
            deliver.apply_async((delivery_ids[0],), countdown=countdown, producer=producer)
            return
        for start in range(0, len(delivery_ids), size):
            deliver_batch.apply_async((delivery_ids[start : start + size],), countdown=countdown, producer=producer)


@transaction.atomic
def delivery_retry(*, delivery: Delivery) -> Delivery:
    """Send a delivery again now (the API's and the admin's retry), whatever its status.

    Raises ProblemError 409 `delivery_in_flight` while an attempt is being sent, and
    409 `webhook_disabled` if the endpoint is disabled.
    """
    locked = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    now = timezone.now()
    if locked.locked_until is not None and locked.locked_until > now:
        raise ProblemError(409, "delivery_in_flight", "An attempt of this delivery is being sent right now.")
    if not locked.endpoint.enabled:
        raise ProblemError(409, "webhook_disabled", "The webhook is disabled; enable it first.")
    locked.status = Delivery.Status.PENDING
    locked.next_attempt_at = now
    locked.queued_at = now
    locked.save(update_fields=["status", "next_attempt_at", "queued_at", "updated_at"])
    delivery_id = locked.pk
    transaction.on_commit(lambda: _enqueue([delivery_id]))
    return locked


# While the broker holds a backlog, a queued row is given this many WEBHOOK_REQUEUE_AFTER periods before it is
# queued again (20 minutes with the default 120 s).
BACKLOG_REQUEUE_FACTOR = 10


def deliveries_requeue_due(*, broker_backlog: int = 0) -> int:
    """Beat: queue due pending deliveries that have no live task. Returns how many were queued.

    Covers retries too far ahead for a countdown, tasks lost with the broker, attempts whose worker
    died (their lease ran out), and failing endpoints' deliveries, which are never queued with their
    event. Bounded: at most WEBHOOK_SWEEP_MAX deliveries, less one per message already waiting in the
    webhooks queue (`broker_backlog`), so a sweep never queues more than the workers drain. Healthy
    endpoints' rows come first; then one row (a probe) per failing endpoint whose backoff has run out.
    Rows are taken with SKIP LOCKED, so two sweeps never queue the same row at once; a duplicate task
    is harmless anyway. While the broker holds a backlog, rows queued in the last
    BACKLOG_REQUEUE_FACTOR x WEBHOOK_REQUEUE_AFTER are assumed to be waiting in it; older ones are
    queued again all the same, which bounds the wait of a row whose task was lost.
    """
    limit = settings.WEBHOOK_SWEEP_MAX - broker_backlog
    if limit <= 0:
        return 0
    now = timezone.now()
    requeue_after = settings.WEBHOOK_REQUEUE_AFTER * (BACKLOG_REQUEUE_FACTOR if broker_backlog > 0 else 1)
    stale = now - timedelta(seconds=requeue_after)
    due = (
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=stale))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
    )
    with transaction.atomic():
        rows = list(due.filter(endpoint__consecutive_failures=0).values_list("pk", flat=True)[:limit])
        probes: list[str] = []
        failing = (
            WebhookEndpoint.objects.filter(enabled=True, consecutive_failures__gt=0)
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .values_list("pk", flat=True)[: limit - len(rows)]
        )
        for endpoint_id in failing:
            probe = due.filter(endpoint_id=endpoint_id).values_list("pk", flat=True).first()
            if probe is not None:
                probes.append(probe)
        if rows or probes:
            Delivery.objects.filter(pk__in=[*rows, *probes]).update(queued_at=now)
            transaction.on_commit(lambda: _enqueue_swept(rows, probes=probes))
    return len(rows) + len(probes)


def _enqueue_swept(delivery_ids: list[str], *, probes: Sequence[str] = ()) -> None:
    """Queue the rows a sweep has just marked queued. A worker lost here leaves them marked with no task in
    the broker: a later sweep takes them again once WEBHOOK_REQUEUE_AFTER has passed (BACKLOG_REQUEUE_FACTOR
    times that while the broker is backlogged). Probes of failing endpoints go in batches of their own, so a
    dead endpoint never holds back a batch of healthy ones."""
    failpoint("webhooks.sweep.marked_queued")
    _enqueue(delivery_ids)
    _enqueue(list(probes))


# --- attempts -----------------------------------------------------------------------------------


# COALESCE keeps PostgreSQL's planner off the partial delivery_due_idx (status = 'pending'): every
# claim and record leaves dead entries there until a vacuum, and a bitmap scan of them ANDed with the
# primary key took 35 ms per claim after 100,000 deliveries, against 0.2 ms by primary key alone.
_CLAIM_SQL = """
    UPDATE webhooks_delivery
       SET locked_until = %s, claim_token = %s, attempt_count = attempt_count + 1, last_attempt_at = %s
     WHERE id IN ({ids}) AND COALESCE(status, '') = 'pending' AND next_attempt_at <= %s
       AND (locked_until IS NULL OR locked_until < %s) {endpoint_healthy}
    RETURNING id, attempt_count
"""
_ENDPOINT_HEALTHY_SQL = "AND endpoint_id IN (SELECT id FROM webhooks_webhookendpoint WHERE consecutive_failures = 0)"


def _claim(delivery_ids: list[str]) -> tuple[str, dict[str, int]]:
    """Take the next attempt of every due, unleased, pending delivery among `delivery_ids`.

    Returns the claim token (one per call: it names this batch's lease) and the attempt number of
    each delivery taken. One UPDATE decides which worker sends: PostgreSQL re-checks the WHERE
    clause under each row's lock, so of two workers racing for an attempt exactly one gets it.

    A failing endpoint (a failure streak) gets one attempt at a time: its `retry_at` is moved to the
    lease's end by a conditional UPDATE (only once its backoff has run out), and then one of its
    deliveries is claimed; its other deliveries here are left for the sweep.
    """
    now = timezone.now()
    token = secrets.token_hex(8)
    lease_end = now + timedelta(seconds=settings.WEBHOOK_SEND_LEASE_SECONDS)
    # A countdown task may wake a moment before next_attempt_at by the database's clock.
    due_by = now + timedelta(seconds=1)
    ids = sorted(set(delivery_ids))
    claimed = _claim_rows(ids, token=token, now=now, lease_end=lease_end, due_by=due_by, healthy_only=True)
    waiting = (
        Delivery.objects.filter(pk__in=[pk for pk in ids if pk not in claimed], status=Delivery.Status.PENDING)
        .filter(next_attempt_at__lte=due_by, endpoint__consecutive_failures__gt=0)
        .filter(Q(endpoint__retry_at__isnull=True) | Q(endpoint__retry_at__lte=due_by))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", "endpoint_id")
    )
    probes: dict[str, str] = {}
    for delivery_id, endpoint_id in waiting:
        probes.setdefault(endpoint_id, delivery_id)
    for endpoint_id, delivery_id in probes.items():
        reserved = (
            WebhookEndpoint.objects.filter(pk=endpoint_id, consecutive_failures__gt=0)
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=due_by))
            .update(retry_at=lease_end)
        )
        if not reserved:
            continue
        taken = _claim_rows([delivery_id], token=token, now=now, lease_end=lease_end, due_by=due_by)
        if taken:
            claimed.update(taken)
        else:  # another worker sent it meanwhile: give the reservation back
            WebhookEndpoint.objects.filter(pk=endpoint_id, retry_at=lease_end).update(retry_at=now)
    left = [pk for pk in ids if pk not in claimed]
    if left and probes:
        # Not sent now because their endpoint is failing: the sweep takes them when it allows.
        Delivery.objects.filter(pk__in=left, endpoint_id__in=list(probes), status=Delivery.Status.PENDING).update(
            queued_at=None
        )
    return token, claimed


def _claim_rows(
    ids: list[str], *, token: str, now: datetime, lease_end: datetime, due_by: datetime, healthy_only: bool = False
) -> dict[str, int]:
    if not ids:
        return {}
    moment = connection.ops.adapt_datetimefield_value  # SQLite stores datetimes as text
    sql = _CLAIM_SQL.format(
        ids=", ".join(["%s"] * len(ids)), endpoint_healthy=_ENDPOINT_HEALTHY_SQL if healthy_only else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [moment(lease_end), token, moment(now), *ids, moment(due_by), moment(now)])
        rows = cursor.fetchall()
    return {delivery_id: int(attempt) for delivery_id, attempt in rows}


def delivery_attempt(*, delivery_id: str) -> str:
    """Send the next attempt of one delivery if it is due and nobody else is sending it.

    Returns what happened: "skipped" (not due, already done or claimed elsewhere),
    "delivered", "retry", "failed" or "dead". Safe to call any number of times.
    """
    return deliveries_attempt(delivery_ids=[delivery_id])[delivery_id]


def deliveries_attempt(*, delivery_ids: list[str]) -> dict[str, str]:
    """Send the next attempt of each delivery that is due and nobody else is sending, all at once.

    One UPDATE claims them (one lease for the batch), one query loads them with their endpoints,
    the POSTs run concurrently (at most WEBHOOK_TIMEOUT + 2 s for the batch, well inside the lease), and
    outcomes are written as answers come in: the 2xx ones of each wave in one UPDATE, failures one
    by one (retry schedule, failure streak). Returns each id's outcome, as `delivery_attempt` does.
    Safe to call any number of times, with overlapping ids.
    """
    outcomes = dict.fromkeys(delivery_ids, "skipped")
    if not delivery_ids:
        return outcomes
    token, attempts = _claim(delivery_ids)
    if not attempts:
        return outcomes
    sending: list[Delivery] = []
    requests: list[SignedRequest] = []
    retries_later: list[tuple[str, float]] = []
    for delivery in Delivery.objects.select_related("endpoint").filter(pk__in=list(attempts)):
        if not delivery.endpoint.enabled:
            outcomes[delivery.pk] = _isolated(
                delivery, partial(_record_endpoint_disabled, delivery=delivery, token=token)
            )
            continue
        try:
            request = _signed(
                endpoint=delivery.endpoint,
                message_id=delivery.event_id,
                body=bytes(delivery.payload),
                delivery_id=delivery.pk,
            )
        except Exception as exc:  # e.g. a secret that no longer decrypts: this delivery only
            logger.exception("could not sign a webhook delivery", extra={"delivery_id": delivery.pk})
            unsent = SendResult(None, f"send_error: {type(exc).__name__}", "", 0)
            outcomes[delivery.pk] = _isolated(delivery, partial(_record_one, delivery, token, unsent, attempts))
            continue
        sending.append(delivery)
        requests.append(request)
    for wave in post_signed_many(requests):
        answered = [(sending[index], result) for index, result in wave if result.delivered]
        if answered:
            try:
                outcomes.update(dict.fromkeys(_record_delivered(token=token, answered=answered), "delivered"))
            except Exception:
                # Recorded one by one instead, so one row's trouble leaves the others' outcomes written.
                for delivery, result in answered:
                    outcomes[delivery.pk] = _isolated(delivery, partial(_record_one, delivery, token, result, attempts))
        for index, result in wave:
            if not result.delivered:
                delivery = sending[index]
                outcomes[delivery.pk] = _isolated(
                    delivery, partial(_record_one, delivery, token, result, attempts, retries_later)
                )
    if retries_later:
        # One task for the batch's retries, when the last of them is due: 20 failures of one event cost one
        # message, and the claim sends a failing endpoint's one attempt at a time anyway.
        _enqueue_quietly([pk for pk, _delay in retries_later], max(delay for _pk, delay in retries_later))
    return outcomes


def _record_one(
    delivery: Delivery,
    token: str,
    result: SendResult,
    attempts: dict[str, int],
    retries_later: list[tuple[str, float]] | None = None,
) -> str:
    return _record(
        delivery_id=delivery.pk,
        endpoint=delivery.endpoint,
        token=token,
        result=result,
        attempt=attempts[delivery.pk],
        retries_later=retries_later,
    )


def _isolated(delivery: Delivery, record: Callable[[], str]) -> str:
    """Write one delivery's outcome; if that fails, log it and leave the row to its lease (the sweep sends it
    again once the lease runs out). A batch carries many endpoints' (and tenants') deliveries: one row's
    error must never keep the others' outcomes from being written."""
    try:
        return record()
    except Exception:
        logger.exception("could not record a webhook attempt", extra={"delivery_id": delivery.pk})
        return "skipped"


def _record_endpoint_disabled(*, delivery: Delivery, token: str) -> str:
    written = Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
        status=Delivery.Status.DEAD,
        locked_until=None,
        next_attempt_at=None,
        last_error=f"webhook disabled: {delivery.endpoint.disabled_reason}"[:2000],
        updated_at=timezone.now(),
    )
    return "dead" if written else "skipped"


def _signed(*, endpoint: WebhookEndpoint, message_id: str, body: bytes, delivery_id: str) -> SignedRequest:
    """The request for one attempt, in the endpoint's format. `body` is the stored Standard Webhooks payload;
    the rtcstack format re-shapes it to `{"event", "payload", "deliveryId"}` and signs that with the current
    secret (its receivers compare one signature)."""
    if endpoint.format == WebhookEndpoint.Format.RTCSTACK:
        stored = json.loads(body)
        shaped = {"event": stored["type"], "payload": stored["data"], "deliveryId": delivery_id}
        rtc_body = json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode()
        signature = rtcstack_signature(secret=endpoint.secret, body=rtc_body)
        return SignedRequest(url=endpoint.url, body=rtc_body, headers={"X-RTCstack-Signature": signature})
    headers = signed_headers(
        secrets_=endpoint.signing_secrets(),
        message_id=message_id,
        timestamp=int(timezone.now().timestamp()),
        body=body,
    )
    return SignedRequest(url=endpoint.url, body=body, headers=headers)


def _send(*, endpoint: WebhookEndpoint, message_id: str, body: bytes, delivery_id: str) -> SendResult:
    request = _signed(endpoint=endpoint, message_id=message_id, body=body, delivery_id=delivery_id)
    return post_signed(url=request.url, body=request.body, headers=request.headers)


def retry_delay(attempt: int, *, retry_after: float | None = None) -> float | None:
    """Seconds before the attempt after `attempt` (1-based), with jitter; None when retries are exhausted."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    jitter = settings.WEBHOOK_RETRY_JITTER
    delay = base * random.uniform(1 - jitter, 1 + jitter) if jitter else base
    if retry_after is not None:  # a receiver's Retry-After is honoured, up to a day
        delay = max(delay, min(retry_after, 86400.0))
    return delay


def _record(
    *,
    delivery_id: str,
    endpoint: WebhookEndpoint,
    token: str,
    result: SendResult,
    attempt: int,
    retries: bool = True,
    retries_later: list[tuple[str, float]] | None = None,
) -> str:
    """Write the outcome of one claimed attempt. A retry due soon is queued with a countdown, or, given
    `retries_later`, added to it for the caller to queue (a batch queues its retries as one task)."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "locked_until": None,
        "last_status_code": result.status_code,
        "last_error": result.error[:2000],
        "last_response_body": result.response_body,
        "duration_ms": result.duration_ms,
        "updated_at": now,
    }
    countdown: float | None = None
    if result.delivered:
        outcome = "delivered"
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
    else:
        delay = retry_delay(attempt, retry_after=result.retry_after_seconds) if retries and result.retryable else None
        if delay is not None:
            outcome = "retry"
            next_at = now + timedelta(seconds=delay)
            fields.update(status=Delivery.Status.PENDING, next_attempt_at=next_at)
            if delay <= settings.WEBHOOK_RETRY_COUNTDOWN_MAX:
                countdown = delay
                fields["queued_at"] = next_at
            else:
                fields["queued_at"] = None  # the sweep sends it when it is due
        else:
            outcome = "dead" if retries and result.retryable else "failed"
            fields.update(status=outcome, next_attempt_at=None)
    with transaction.atomic():
        # Only the holder of this attempt's claim writes its outcome; a lease that ran out and was
        # claimed again belongs to the newer attempt.
        written = Delivery.objects.filter(pk=delivery_id, claim_token=token).update(**fields)
        if not written:
            return "skipped"
        if result.delivered:
            if endpoint.consecutive_failures:  # healthy endpoints cost no extra write
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                    consecutive_failures=0, failing_since=None, retry_at=None
                )
        else:
            _count_failure(endpoint_id=endpoint.pk, now=now)
        if countdown is not None:
            if retries_later is not None:
                retries_later.append((delivery_id, countdown))
            else:
                transaction.on_commit(lambda: _enqueue_quietly([delivery_id], countdown))
    return outcome


_DELIVERED_SQL = """
    UPDATE webhooks_delivery
       SET status = 'delivered', delivered_at = %s, next_attempt_at = NULL, locked_until = NULL,
           last_error = '', updated_at = %s,
           last_status_code = CASE id {cases} END,
           last_response_body = CASE id {cases} END,
           duration_ms = CASE id {cases} END
     WHERE claim_token = %s AND id IN ({ids})
    RETURNING id
"""


def _record_delivered(*, token: str, answered: list[tuple[Delivery, SendResult]]) -> list[str]:
    """Mark deliveries that got a 2xx as delivered, in one UPDATE. Returns the ids written.

    Like `_record`, only rows still held by this claim are written. A 2xx ends the endpoint's
    failure streak (healthy endpoints cost no extra write).
    """
    now = timezone.now()
    moment = connection.ops.adapt_datetimefield_value
    ids = [delivery.pk for delivery, _result in answered]

    def by_id(values: list[str | int | None]) -> list[str | int | None]:
        return [item for pair in zip(ids, values, strict=True) for item in pair]

    params: list[str | int | None] = [
        moment(now),
        moment(now),
        *by_id([result.status_code for _delivery, result in answered]),
        *by_id([result.response_body for _delivery, result in answered]),
        *by_id([result.duration_ms for _delivery, result in answered]),
        token,
        *ids,
    ]
    sql = _DELIVERED_SQL.format(cases=" ".join(["WHEN %s THEN %s"] * len(ids)), ids=", ".join(["%s"] * len(ids)))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written = {row[0] for row in cursor.fetchall()}
        recovered = {
            delivery.endpoint_id
            for delivery, _result in answered
            if delivery.pk in written and delivery.endpoint.consecutive_failures
        }
        if recovered:
            WebhookEndpoint.objects.filter(pk__in=recovered).update(
                consecutive_failures=0, failing_since=None, retry_at=None
            )
    return [delivery_id for delivery_id in ids if delivery_id in written]


def _enqueue_quietly(delivery_ids: list[str], countdown: float) -> None:
    try:
        _enqueue(delivery_ids, countdown=countdown)
    except Exception:  # the broker is down: the sweep queues them once they are due
        logger.warning("could not queue webhook retries; the sweep will", extra={"delivery_ids": delivery_ids})


def _count_failure(*, endpoint_id: str, now: datetime) -> None:
    """Extend the endpoint's failure streak and back it off; disable it (once) when the streak is long enough.

    The n-th failure in a row holds the endpoint's next attempt back by the n-th retry delay (capped at
    WEBHOOK_ENDPOINT_BACKOFF_MAX), whichever delivery that attempt carries."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        consecutive_failures=F("consecutive_failures") + 1, failing_since=Coalesce("failing_since", now)
    )
    streak = WebhookEndpoint.objects.filter(pk=endpoint_id).values_list("consecutive_failures", flat=True).first()
    if streak:
        schedule = settings.WEBHOOK_RETRY_SCHEDULE
        delay = retry_delay(min(streak, len(schedule))) if schedule else 0.0
        backoff = min(delay or 0.0, settings.WEBHOOK_ENDPOINT_BACKOFF_MAX)
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(retry_at=now + timedelta(seconds=backoff))
    window_start = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    reason = (
        f"{settings.WEBHOOK_DISABLE_AFTER_FAILURES}+ failed attempts in a row since more than "
        f"{settings.WEBHOOK_DISABLE_AFTER_SECONDS} s"
    )
    # The conditional UPDATE makes exactly one worker the one that disables and announces it.
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint_id,
        enabled=True,
        consecutive_failures__gte=settings.WEBHOOK_DISABLE_AFTER_FAILURES,
        failing_since__lte=window_start,
    ).update(enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now)
    if disabled:
        endpoint = WebhookEndpoint.objects.select_related("tenant").get(pk=endpoint_id)
        logger.warning("webhook endpoint disabled", extra={"webhook_id": endpoint_id})
        event_emit(
            tenant=endpoint.tenant,
            type=WEBHOOK_DISABLED,
            data={
                "webhookId": endpoint.id,
                "url": endpoint.url,
                "reason": reason,
                "consecutiveFailures": endpoint.consecutive_failures,
                "disabledAt": _iso(now),
            },
        )
