"""Reads of the outbound webhooks, always scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from scaiwave.api.errors import ProblemError
from scaiwave.models import Tenant
from webhooks.models import Delivery, WebhookEndpoint


def webhooks_for_tenant(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant)


def webhook_get(*, tenant: Tenant, webhook_id: str) -> WebhookEndpoint:
    """The tenant's endpoint; raises ProblemError 404 `webhook_not_found` (also for another tenant's)."""
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, pk=webhook_id).first()
    if endpoint is None:
        raise ProblemError(404, "webhook_not_found", "Webhook not found")
    return endpoint


def deliveries_for_webhook(*, endpoint: WebhookEndpoint, status: str | None = None) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.filter(endpoint=endpoint).defer("payload")
    if status:
        if status not in Delivery.Status.values:
            raise ProblemError(
                400,
                "validation_failed",
                f"status must be one of {', '.join(Delivery.Status.values)}.",
                errors={"status": ["Unknown status."]},
            )
        deliveries = deliveries.filter(status=status)
    return deliveries


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: str) -> Delivery:
    """One delivery of the endpoint; raises ProblemError 404 `delivery_not_found`."""
    delivery = Delivery.objects.filter(endpoint=endpoint, pk=delivery_id).first()
    if delivery is None:
        raise ProblemError(404, "delivery_not_found", "Delivery not found")
    return delivery
