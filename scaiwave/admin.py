from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from scaiwave.models import Event, Tenant, TenantUser
from scaiwave.services import tenant_rotate_secret


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "api_key_id",
        "recordings_enabled",
        "transcription_enabled",
        "ring_timeout_seconds",
        "created_at",
    ]
    search_fields = ["name", "api_key_id"]
    readonly_fields = ["id", "api_key_id", "created_at", "secret_rotated_at"]
    exclude = ["api_secret_digest", "api_secret_encrypted"]
    actions = ["rotate_secret"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants are created by `manage.py bootstrap --tenant NAME`, which shows the secret once

    @admin.action(description="Rotate the API secret (the old one stops working)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            secret = tenant_rotate_secret(tenant=tenant)
            self.message_user(request, f"New API secret for {tenant.name}: {secret} (shown once)", messages.WARNING)


@admin.register(TenantUser)
class TenantUserAdmin(admin.ModelAdmin):
    list_display = ["external_id", "display_name", "tenant", "created_at", "last_seen_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["external_id", "display_name"]
    readonly_fields = ["created_at", "last_seen_at"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "tenant", "created_at", "dispatched_at", "dispatch_attempts"]
    list_filter = ["type", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["id", "type"]
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
