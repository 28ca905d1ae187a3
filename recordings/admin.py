"""Operators see recordings with LiveKit's failure text, their egresses and files, and play the file in the
page (an HTML5 player on the same signed download URL clients get). Stopping, retrying the file registration,
deleting and checking against LiveKit go through the services, after a confirmation page, never a bare
status update."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from recordings import selectors, services
from recordings.models import MediaEntry, Recording, RecordingEgress
from scaiwave.admin_tools import NO_SAVE_BUTTONS, CappedCountPaginator, log_action, run_confirmed
from scaiwave.audit import admin_actor


def media_player(entry: MediaEntry | None, *, video: bool = True) -> SafeString | str:
    """An <audio>/<video> element on the entry's signed download URL (no script, no third party)."""
    if entry is None:
        return "no file registered yet"
    if entry.missing_since is not None:
        return f"the file went missing from storage on {entry.missing_since:%Y-%m-%d %H:%M}"
    url = selectors.media_reference(entry)["url"]
    if video and entry.content_type.startswith("video/"):
        return format_html(
            '<video class="media-player" controls preload="metadata" width="480" src="{}"></video>'
            '<br><a href="{}">download ({} bytes)</a>',
            url,
            url,
            entry.size,
        )
    return format_html(
        '<audio class="media-player" controls preload="metadata" src="{}"></audio>'
        '<br><a href="{}">download ({} bytes)</a>',
        url,
        url,
        entry.size,
    )


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
    list_filter = [
        "status",
        "transcript",
        "tenant",
        ("created_at", DateFieldListFilter),
        ("finished_at", DateFieldListFilter),
    ]
    list_select_related = ["tenant", "room", "call"]
    show_full_result_count = False
    paginator = CappedCountPaginator
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
        "player",
    ]
    inlines = [RecordingEgressInline, MediaEntryInline]
    actions = ["stop_recordings", "retry_registration", "check_with_livekit"]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().change_view(request, object_id, form_url, {**NO_SAVE_BUTTONS, **(extra_context or {})})

    @admin.display(description="play")
    def player(self, recording: Recording) -> SafeString | str:
        entries = recording.media_entries.select_related("egress").order_by("created_at", "id")
        composite = next(
            (e for e in entries if e.egress is None or e.egress.kind == RecordingEgress.Kind.ROOM_COMPOSITE), None
        )
        return media_player(composite, video=recording.video)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through recording_delete (objects first), via the API

    @admin.action(description="Stop the selected recordings", permissions=["change"])
    def stop_recordings(self, request: HttpRequest, queryset: QuerySet[Recording]) -> HttpResponse | None:
        def stop(recording: Recording) -> str | None:
            if not recording.is_active:
                return None
            return f"LiveKit asked to stop; now {services.recording_stop(recording=recording).status}"

        return run_confirmed(
            self,
            request,
            queryset,
            title="Stop recordings",
            explanation=(
                "LiveKit is asked to stop every running egress of each recording below; the file is then "
                "registered as usual. Recordings that are not running are left as they are."
            ),
            run=stop,
        )

    @admin.action(description="Retry registering the recorded files", permissions=["change"])
    def retry_registration(self, request: HttpRequest, queryset: QuerySet[Recording]) -> HttpResponse | None:
        def register(recording: Recording) -> str | None:
            # Only a recording still processing has files waiting: a worker that gave up (storage down past
            # its retries) leaves it there. The service is idempotent and checks each file again.
            if recording.status != Recording.Status.PROCESSING:
                return None
            registered = services.recording_register_file(recording_id=recording.pk)
            return f"registration ran; now {registered.status}" if registered else None

        return run_confirmed(
            self,
            request,
            queryset,
            title="Retry registering the recorded files",
            explanation=(
                "For each recording below that is still processing, the finished egress files are checked in "
                "storage (size, duration, checksum) and registered; a file that is missing or unreadable fails "
                "the recording with the reason. Other recordings are left as they are."
            ),
            run=register,
        )

    @admin.action(description="Check running egresses against LiveKit now", permissions=["change"])
    def check_with_livekit(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        changed = services.recordings_reconcile_egress(older_than_seconds=0)
        for recording in queryset:
            log_action(request, recording, "Checked running egresses against LiveKit")
        self.message_user(request, f"{changed} egress(es) changed after asking LiveKit.", messages.SUCCESS)


@admin.register(MediaEntry)
class MediaEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "key", "source", "content_type", "size", "duration_seconds", "missing_since"]
    list_filter = ["source", "tenant", ("created_at", DateFieldListFilter)]
    list_select_related = ["tenant"]
    show_full_result_count = False
    paginator = CappedCountPaginator
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
        "player",
    ]

    @admin.display(description="play")
    def player(self, entry: MediaEntry) -> SafeString | str:
        return media_player(entry)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: MediaEntry) -> None:
        services.media_entry_delete(entry=obj, actor=admin_actor(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[MediaEntry]) -> None:
        for entry in queryset:
            services.media_entry_delete(entry=entry, actor=admin_actor(request.user))
