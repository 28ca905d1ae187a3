"""Outbound webhook writes: endpoints (`endpoints`) and deliveries (`deliveries`). The names other
modules and settings use are re-exported here: `webhooks.services.deliveries_create_for_event` and friends."""

from webhooks.services.deliveries import (
    deliveries_attempt,
    deliveries_create_for_event,
    deliveries_requeue_due,
    delivery_attempt,
    delivery_retry,
    retry_delay,
    webhook_send_test,
)
from webhooks.services.endpoints import (
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_set_enabled,
    webhook_update,
    webhook_validate,
)

__all__ = [
    "deliveries_attempt",
    "deliveries_create_for_event",
    "deliveries_requeue_due",
    "delivery_attempt",
    "delivery_retry",
    "retry_delay",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate_secret",
    "webhook_send_test",
    "webhook_set_enabled",
    "webhook_update",
    "webhook_validate",
]
