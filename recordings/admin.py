"""Operators see recordings with LiveKit's failure text, their egresses and files. Stopping, deleting
and checking against LiveKit go through the services, never a bare status update."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from recordings import services
from recordings.models import MediaEntry, Recording, RecordingEgress
from rooms.livekit_gateway import LiveKitError


class RecordingEgressInline(admin.TabularInline):
    model = RecordingEgress
    extra = 0
    can_delete = False
    fields = ("egress_id", "kind", "status", "error", "participant_identity", "track_sid", "file_key", "file_size")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MediaEntryInline(admin.TabularInline):
    model = MediaEntry
    fk_name = "recording"
    extra = 0
    can_delete = False
    fields = ("id", "key", "content_type", "size", "duration_seconds", "sha256", "missing_since")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "room", "call", "status", "failure_reason", "created_at", "finished_at"]
    list_filter = ["status", "transcript", "tenant"]
    list_select_related = ["tenant", "room", "call"]
    search_fields = ["id", "room__name", "call__id", "egresses__egress_id"]
    raw_id_fields = ["tenant", "room", "call", "requested_by"]
    readonly_fields = [
        "id",
        "tenant",
        "room",
        "call",
        "kind",
        "status",
        "failure_reason",
        "audio",
        "video",
        "transcript",
        "livekit_room",
        "storage_key",
        "requested_by",
        "created_at",
        "started_at",
        "stopped_at",
        "finished_at",
    ]
    inlines = [RecordingEgressInline, MediaEntryInline]
    actions = ["stop_recordings", "check_with_livekit"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through recording_delete (objects first), via the API

    @admin.action(description="Stop the selected recordings")
    def stop_recordings(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        stopped = 0
        for recording in queryset:
            try:
                services.recording_stop(recording=recording)
                stopped += 1
            except LiveKitError as exc:
                self.message_user(request, f"{recording.pk}: {exc.detail}", messages.ERROR)
        self.message_user(request, f"Asked LiveKit to stop {stopped} recording(s).", messages.SUCCESS)

    @admin.action(description="Check running egresses against LiveKit now")
    def check_with_livekit(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        changed = services.recordings_reconcile_egress(older_than_seconds=0)
        self.message_user(request, f"{changed} egress(es) changed after asking LiveKit.", messages.SUCCESS)


@admin.register(MediaEntry)
class MediaEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "key", "source", "content_type", "size", "duration_seconds", "missing_since"]
    list_filter = ["source", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["id", "key", "sha256"]
    raw_id_fields = ["tenant", "recording", "egress"]
    readonly_fields = [
        "id",
        "tenant",
        "key",
        "content_type",
        "size",
        "duration_seconds",
        "sha256",
        "source",
        "recording",
        "egress",
        "created_at",
        "missing_since",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: MediaEntry) -> None:
        services.media_entry_delete(entry=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[MediaEntry]) -> None:
        for entry in queryset:
            services.media_entry_delete(entry=entry)
