"""Celery tasks of the outbound webhooks. They take ids and call services; running one twice is harmless."""

from __future__ import annotations

from collections import Counter

from celery import current_app, shared_task

from webhooks.services import deliveries_attempt, deliveries_requeue_due, delivery_attempt


# acks_late + reject_on_worker_lost: a worker killed mid-send gives the message back to the broker;
# if the broker lost it too, the sweep finds the row once its lease has run out.
@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=45,
    time_limit=60,
)
def deliver(delivery_id: str) -> str:
    return delivery_attempt(delivery_id=delivery_id)


# One event's deliveries (or a sweep's chunk), sent at once; the same guarantees as `deliver`: a
# worker killed mid-batch leaves leases that run out, and the sweep queues those rows again.
@shared_task(
    name="webhooks.deliver_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=45,
    time_limit=60,
)
def deliver_batch(delivery_ids: list[str]) -> dict[str, int]:
    outcomes = deliveries_attempt(delivery_ids=delivery_ids)
    return dict(Counter(outcomes.values()))


def broker_backlog(queue: str = "webhooks") -> int | None:
    """How many messages wait in the broker's queue, or None if the broker cannot say."""
    try:
        with current_app.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception:  # the broker is down or does not count: behave as if nothing waits
        return None


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True, soft_time_limit=50, time_limit=60)
def sweep() -> int:
    return deliveries_requeue_due(broker_backlog=broker_backlog() or 0)
