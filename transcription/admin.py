"""Operators see jobs and their segments; deleting goes through transcription_delete, re-running re-queues."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from scaiwave.admin_tools import run_confirmed
from transcription.models import Transcription, TranscriptSegment
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
        transcription_delete(transcription=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Transcription]) -> None:
        for transcription in queryset:
            transcription_delete(transcription=transcription)

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
