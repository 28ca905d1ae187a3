"""Admin pages for webhook endpoints and deliveries, and their actions (through the services)."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(acme):
    created, _secret = webhook_create(tenant=acme.tenant, url="https://example.com/hook")
    return created


@pytest.fixture
def delivery(acme, endpoint):
    return Delivery.objects.create(
        tenant=acme.tenant,
        endpoint=endpoint,
        event_id="evt_1",
        event_type="room_created",
        payload=b'{"id":"evt_1"}',
        status="failed",
        attempt_count=1,
        last_status_code=400,
    )


def test_endpoint_pages_show_the_disabled_notice(admin_client, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="20+ failed attempts")
    assert admin_client.get(reverse("admin:webhooks_webhookendpoint_changelist")).status_code == 200
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=endpoint.created_at)
    page = admin_client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
    assert page.status_code == 200
    assert b"20+ failed attempts" in page.content
    detail = admin_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[quote(endpoint.pk)]))
    assert detail.status_code == 200
    assert endpoint.secret.encode() not in detail.content


def test_enable_disable_and_rotate_actions(admin_client, endpoint):
    url = reverse("admin:webhooks_webhookendpoint_changelist")
    confirm = admin_client.post(url, {"action": "disable", "_selected_action": [endpoint.pk]})
    assert confirm.status_code == 200  # a confirmation page; nothing changed yet
    endpoint.refresh_from_db()
    assert endpoint.enabled
    admin_client.post(url, {"action": "disable", "_selected_action": [endpoint.pk], "post": "yes"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "admin" in endpoint.disabled_reason
    admin_client.post(url, {"action": "enable", "_selected_action": [endpoint.pk], "post": "yes"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""
    old_secret = endpoint.secret
    response = admin_client.post(
        url, {"action": "rotate_secret", "_selected_action": [endpoint.pk], "post": "yes"}, follow=True
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret and endpoint.signing_secrets()[1] == old_secret
    assert endpoint.secret.encode() in response.content  # shown once, in the message


def test_delivery_pages_and_retry_action(admin_client, delivery, settings, monkeypatch):
    from scaiwave.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", False)
    assert admin_client.get(reverse("admin:webhooks_delivery_changelist")).status_code == 200
    detail = admin_client.get(reverse("admin:webhooks_delivery_change", args=[quote(delivery.pk)]))
    assert detail.status_code == 200 and b"evt_1" in detail.content
    admin_client.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "retry", "_selected_action": [delivery.pk], "post": "yes"},
    )
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_editing_an_endpoint_applies_the_api_rules(admin_client, endpoint, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    url = reverse("admin:webhooks_webhookendpoint_change", args=[quote(endpoint.pk)])
    refused = admin_client.post(url, {"url": "http://169.254.169.254/latest", "events": '["*"]'})
    assert refused.status_code == 200 and b"metadata" in refused.content
    refused = admin_client.post(url, {"url": "https://example.org/x", "events": '["nope"]'})
    assert refused.status_code == 200 and b"Unknown event" in refused.content
    saved = admin_client.post(url, {"url": "https://example.org/x", "events": '["room_closed"]'})
    assert saved.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://example.org/x", ["room_closed"])


def test_a_read_only_support_user_cannot_retry_deliveries(client, delivery):
    from django.contrib.auth.models import User

    from scaiwave.admin_support import support_group_sync

    support = User.objects.create_user("support", password="pw", is_staff=True)
    support.groups.add(support_group_sync())
    client.force_login(support)
    page = client.get(reverse("admin:webhooks_delivery_changelist"))
    assert page.status_code == 200 and b"Retry now" not in page.content
    client.post(
        reverse("admin:webhooks_delivery_changelist"),
        {"action": "retry", "_selected_action": [delivery.pk], "post": "yes"},
    )
    before = delivery.next_attempt_at
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == before
