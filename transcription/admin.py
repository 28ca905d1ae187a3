"""Operators see jobs and their segments; deleting goes through transcription_delete, re-running re-queues."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from scaiwave.admin_tools import run_confirmed
from scaiwave.audit import admin_actor
from transcription.analysis.services import uploaded_call_delete
from transcription.models import ActionItem, Transcription, TranscriptSegment, UploadedCall
from transcription.services import transcription_delete, transcription_requeue


class TranscriptSegmentInline(admin.TabularInline):
    model = TranscriptSegment
    extra = 0
    can_delete = False
    fields = ("index", "start", "end", "speaker_name", "speaker_label", "text", "confidence")
    readonly_fields = fields
    ordering = ("index",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Transcription)
class TranscriptionAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "mode", "status", "progress", "language", "duration", "model", "created_at")
    list_filter = ("status", "mode", "model")
    search_fields = ("id", "recording__id")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant", "recording", "media_entry")
    readonly_fields = (
        "id",
        "tenant",
        "mode",
        "recording",
        "media_entry",
        "status",
        "language",
        "detected_language",
        "model",
        "progress",
        "duration",
        "error",
        "attempts",
        "speaker_map",
        "created_at",
        "started_at",
        "completed_at",
    )
    inlines = [TranscriptSegmentInline]
    actions = ["requeue_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Transcription) -> None:
        transcription_delete(transcription=obj, actor=admin_actor(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> None:
        for transcription in queryset:
            transcription_delete(transcription=transcription, actor=admin_actor(request.user))

    @admin.action(description="Run the selected transcriptions again", permissions=["change"])
    def requeue_selected(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> HttpResponse | None:
        def run(transcription: Transcription) -> str | None:
            return "queued again" if transcription_requeue(transcription=transcription) else None

        return run_confirmed(
            self, request, queryset, title="Run transcriptions again",
            explanation="Each finished or failed transcription below is transcribed again from its recording; "
            "its current segments are replaced when the new run completes. Jobs still running are left alone.",
            run=run,
        )  # fmt: skip


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    extra = 0
    can_delete = False
    fields = ["text", "owner_name", "due_date", "due_text", "done"]
    readonly_fields = ["text", "owner_name", "due_date", "due_text", "done"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(UploadedCall)
class UploadedCallAdmin(admin.ModelAdmin):
    """Uploaded calls (document 002) with their analysis; read-only, deleted through the service (storage first)."""

    list_display = ["id", "title", "owner", "tenant", "status", "direction", "duration_seconds", "created_at"]
    list_filter = ["status", "direction", "tenant"]
    list_select_related = ["owner", "tenant"]
    search_fields = ["id", "title", "contact_name", "owner__external_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    raw_id_fields = ["tenant", "owner", "media_entry", "transcription"]
    readonly_fields = [
        "summary",
        "action_item_count",
        *[f.name for f in UploadedCall._meta.fields if f.name not in ("idempotency_key", "upload_sha256")],
    ]
    exclude = ["idempotency_key", "upload_sha256"]
    inlines = [ActionItemInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: UploadedCall) -> None:
        uploaded_call_delete(call=obj, actor=admin_actor(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UploadedCall]) -> None:
        for call in queryset:
            uploaded_call_delete(call=call, actor=admin_actor(request.user))

    @admin.display(description="summary")
    def summary(self, call: UploadedCall) -> str:
        return str((call.analysis or {}).get("summary") or "")

    @admin.display(description="action items")
    def action_item_count(self, call: UploadedCall) -> int:
        return call.action_items.count()
