"""Admin for outbound webhooks: endpoints (enable, disable, rotate) and the delivery log (retry).

Actions go through the same services as the API. LiveKit's inbound events are administered by
the intake (webhooks/intake.py) if it registers an admin.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from scaiwave.admin_tools import run_confirmed
from scaiwave.api.errors import ProblemError
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import (
    delivery_retry,
    webhook_rotate_secret,
    webhook_set_enabled,
    webhook_update,
    webhook_validate,
)


class WebhookEndpointForm(forms.ModelForm):
    """Checks url and events the way the API does (SSRF policy, known event names)."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        events = cleaned.get("events")
        if "url" in cleaned and isinstance(events, list):
            try:
                cleaned["url"], cleaned["events"] = webhook_validate(url=cleaned["url"], events=events)
            except ProblemError as exc:
                raise forms.ValidationError(exc.detail) from None
        elif events is not None and not isinstance(events, list):
            self.add_error("events", 'A JSON list of event names, e.g. ["*"].')
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["id", "url", "tenant", "enabled", "disabled_notice", "consecutive_failures", "created_at"]
    list_filter = ["enabled", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["id", "url"]
    raw_id_fields = ["tenant"]
    readonly_fields = [
        "id",
        "tenant",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "consecutive_failures",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ]
    fields = ["id", "tenant", "url", "events", *readonly_fields[2:]]
    actions = ["enable", "disable", "rotate_secret"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, which shows the secret once

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        webhook_update(endpoint=obj, url=form.cleaned_data["url"], events=form.cleaned_data["events"])

    @admin.display(description="webhook.disabled notice")
    def disabled_notice(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.enabled:
            return ""
        when = f" {endpoint.disabled_at:%Y-%m-%d %H:%M} UTC" if endpoint.disabled_at else ""
        return f"disabled{when}: {endpoint.disabled_reason or 'no reason recorded'}"

    @admin.action(description="Enable (clears the failure streak)", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        def run(endpoint: WebhookEndpoint) -> str | None:
            if endpoint.enabled:
                return None
            webhook_set_enabled(endpoint=endpoint, enabled=True)
            return "enabled"

        return run_confirmed(
            self, request, queryset, title="Enable webhook endpoints",
            explanation="Deliveries resume for each endpoint below and its failure streak starts again from zero.",
            run=run,
        )  # fmt: skip

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        def run(endpoint: WebhookEndpoint) -> str | None:
            if not endpoint.enabled:
                return None
            webhook_set_enabled(endpoint=endpoint, enabled=False, reason=f"disabled by {request.user} in the admin")
            return "disabled"

        return run_confirmed(
            self, request, queryset, title="Disable webhook endpoints",
            explanation="No new deliveries are sent to the endpoints below until they are enabled again.",
            run=run,
        )  # fmt: skip

    @admin.action(
        description="Rotate the signing secret (old one signs during the grace period)", permissions=["change"]
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        def run(endpoint: WebhookEndpoint) -> str:
            _endpoint, secret = webhook_rotate_secret(endpoint=endpoint)
            self.message_user(request, f"New secret for {endpoint.id}: {secret} (shown once)", messages.WARNING)
            return "secret rotated"

        return run_confirmed(
            self, request, queryset, title="Rotate webhook signing secrets",
            explanation="Each endpoint gets a new secret, shown once; the old one also signs during the grace period.",
            run=run,
        )  # fmt: skip


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "tenant",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type", "tenant"]
    list_select_related = ["endpoint", "tenant"]
    search_fields = ["id", "event_id", "endpoint__id", "endpoint__url"]
    raw_id_fields = ["endpoint", "tenant"]
    show_full_result_count = False
    exclude = ["payload", "claim_token"]
    readonly_fields = [
        "payload_text",
        *[f.name for f in Delivery._meta.fields if f.name not in ("payload", "claim_token")],
    ]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="payload")
    def payload_text(self, delivery: Delivery) -> str:
        return bytes(delivery.payload).decode("utf-8", errors="replace")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # Deliveries are read-only in the admin, but retrying one is an act: it needs change rights,
        # so the read-only support group never sees the action.
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> HttpResponse | None:
        def run(delivery: Delivery) -> str:
            delivery_retry(delivery=delivery)
            return "queued for another attempt"

        return run_confirmed(
            self, request, queryset, title="Retry webhook deliveries",
            explanation="Each delivery below is sent again now, with its original payload and a fresh signature.",
            run=run,
        )  # fmt: skip
