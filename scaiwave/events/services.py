"""The transactional outbox: write an Event with the change, fan it out after commit.

`event_emit` must be called inside the transaction that makes the change. After
commit the event is dispatched in-process; if that fails or the process dies first,
`events_redispatch` (a beat task) picks it up. Sinks run before the row is marked
dispatched, so a crash in between repeats a sink rather than skipping it: sinks are
idempotent (webhook deliveries are unique per event and endpoint; WebSocket frames
carry the event id for clients to de-duplicate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import lru_cache
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from scaiwave.events.groups import room_group, user_group
from scaiwave.failpoints import failpoint
from scaiwave.models import Event, Tenant

logger = logging.getLogger("scaiwave.events")

EventSink = Callable[[Event], None]


@lru_cache(maxsize=1)
def _sinks() -> tuple[EventSink, ...]:
    loaded = []
    for dotted in settings.EVENT_SINKS:
        module_name, _, attr = dotted.rpartition(".")
        loaded.append(getattr(import_module(module_name), attr))
    return tuple(loaded)


def event_emit(
    *,
    tenant: Tenant,
    type: str,
    data: dict[str, Any],
    user_ids: Iterable[int] = (),
    room_key: str = "",
) -> Event:
    """Record a domain event; it is fanned out once the surrounding transaction commits.

    `user_ids` are TenantUser primary keys whose WebSocket connections get the frame;
    `room_key` reaches every connection subscribed to that room.
    """
    event = Event.objects.create(tenant=tenant, type=type, data=data, user_ids=sorted(set(user_ids)), room_key=room_key)
    seq = event.seq
    transaction.on_commit(lambda: _dispatch_after_commit(seq))
    return event


def events_room_unsubscribe(*, tenant_id: str, room_key: str, reason: str, user_pk: int | None = None) -> None:
    """Once the surrounding transaction commits, end subscriptions to a room on /v1/events: one user's
    connections (a removed member, `user_pk`) or every subscriber's (a closed room, no `user_pk`).

    Membership is checked when a client subscribes; this is the other half, so a removed member stops
    receiving the room's frames. Each dropped connection gets an `unsubscribed` frame with `reason`.
    With the in-memory channel layer (no Redis) only this process's connections are reached.
    """
    group = room_group(tenant_id, room_key) if user_pk is None else user_group(tenant_id, user_pk)
    message = {"type": "room.unsubscribe", "room_key": room_key, "reason": reason}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the change is committed; the subscription outlives it until the socket closes
            logger.exception("room unsubscribe failed", extra={"room_key": room_key})

    transaction.on_commit(send)


def _dispatch_after_commit(seq: int) -> None:
    try:
        event_dispatch(seq)
    except Exception:  # left undispatched; the beat task retries
        logger.exception("event dispatch failed", extra={"event_seq": seq})


def event_dispatch(seq: int) -> bool:
    """Run every sink for one event, then mark it dispatched. Returns False if already done."""
    event = Event.objects.select_related("tenant").filter(seq=seq, dispatched_at__isnull=True).first()
    if event is None:
        return False
    try:
        for sink in _sinks():
            sink(event)
    except Exception as exc:
        Event.objects.filter(seq=seq).update(
            dispatch_attempts=F("dispatch_attempts") + 1, last_dispatch_error=repr(exc)[:2000]
        )
        raise
    Event.objects.filter(seq=seq, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1, last_dispatch_error=""
    )
    return True


def events_redispatch(*, older_than_seconds: float | None = None, batch: int = 500) -> int:
    """Dispatch events left behind by a crash or a broker outage. Returns how many were sent."""
    age = settings.OUTBOX_REDISPATCH_AGE if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=age)
    sent = 0
    with transaction.atomic():
        # skip_locked: two beats (or a beat and a manual run) never work on the same rows.
        pending = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True, created_at__lte=cutoff)
            .order_by("seq")
            .values_list("seq", flat=True)[:batch]
        )
        for seq in pending:
            try:
                dispatched = event_dispatch(seq)
            except Exception:
                logger.exception("event re-dispatch failed", extra={"event_seq": seq})
                continue
            if dispatched:
                sent += 1
                # This event's sinks have run (its WebSocket frames are out); the batch is not committed yet.
                failpoint("scaiwave.events.redispatch.dispatched")
    return sent
