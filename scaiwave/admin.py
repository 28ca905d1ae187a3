"""Tenants (settings, secret rotation), their users, and the outbox. The index page carries the operators'
dashboard (templates/admin/index.html, scaiwave/admin_dashboard.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse

from scaiwave.admin_tools import CappedCountPaginator, run_confirmed
from scaiwave.models import Event, Tenant, TenantUser
from scaiwave.services import tenant_rotate_secret

admin.site.site_header = "ScaiWave operations"
admin.site.site_title = "ScaiWave admin"
admin.site.index_title = "Dashboard"


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "api_key_id",
        "recordings_enabled",
        "transcription_enabled",
        "max_participants_per_call",
        "ring_timeout_seconds",
        "retention_days",
        "user_count",
        "created_at",
    ]
    search_fields = ["name", "api_key_id"]
    readonly_fields = ["id", "api_key_id", "created_at", "secret_rotated_at"]
    exclude = ["api_secret_digest", "api_secret_encrypted"]
    actions = ["rotate_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(user_total=Count("users", distinct=True))

    @admin.display(description="users", ordering="user_total")
    def user_count(self, tenant: Tenant) -> int:
        return int(getattr(tenant, "user_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants are created by `manage.py bootstrap --tenant NAME`, which shows the secret once

    @admin.action(description="Rotate the API secret (the old one stops working)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        def rotate(tenant: Tenant) -> str:
            with transaction.atomic():
                secret = tenant_rotate_secret(tenant=tenant)
            self.message_user(request, f"New API secret for {tenant.name}: {secret} (shown once)", messages.WARNING)
            return "secret rotated"

        return run_confirmed(
            self,
            request,
            queryset,
            title="Rotate the API secret",
            explanation=(
                "Each tenant below gets a new API secret. The old secret stops working within 5 seconds: server calls "
                "with the old X-API-Key and user tokens signed with it are refused until the host application "
                "is given the new one, which is shown once on the next page."
            ),
            run=rotate,
        )


@admin.register(TenantUser)
class TenantUserAdmin(admin.ModelAdmin):
    list_display = ["external_id", "display_name", "tenant", "created_at", "last_seen_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["external_id", "display_name"]
    readonly_fields = ["tenant", "external_id", "created_at", "last_seen_at"]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users are created on first use of their token


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "tenant", "created_at", "dispatched_at", "dispatch_attempts"]
    list_filter = ["type", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["id", "type"]
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
