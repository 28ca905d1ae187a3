"""Operators see calls, participants and timelines; ending a call goes through `call_end`'s sibling
for operators (the room-close path), never a bare status update."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from calls.models import Call, CallParticipant, LiveCall, TimelineEntry
from calls.services import call_end_by_operator


class CallParticipantInline(admin.TabularInline):
    model = CallParticipant
    extra = 0
    can_delete = False
    raw_id_fields = ["user"]
    readonly_fields = [
        "user",
        "invited_at",
        "token_issued_at",
        "joined_at",
        "left_at",
        "leave_reason",
        "rejected_at",
        "audio_on",
        "video_on",
        "livekit_identity",
        "livekit_sid",
    ]
    exclude = ["tracks", "last_event_at"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "room", "type", "status", "initiator", "created_at", "ended_at", "end_reason"]
    list_filter = ["status", "type", "tenant"]
    list_select_related = ["tenant", "room", "initiator"]
    search_fields = ["id", "room__name", "initiator__external_id"]
    raw_id_fields = ["tenant", "room", "initiator"]
    readonly_fields = [
        "id",
        "tenant",
        "room",
        "type",
        "status",
        "initiator",
        "created_at",
        "started_at",
        "ended_at",
        "end_reason",
        "failure_reason",
        "ring_expires_at",
        "livekit_room",
    ]
    inlines = [CallParticipantInline]
    actions = ["end_calls"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="End the selected live calls")
    def end_calls(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        ended = sum(1 for call in queryset if call_end_by_operator(call_id=call.pk))
        self.message_user(request, f"Ended {ended} call(s).", messages.SUCCESS)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "room", "kind", "call", "created_at"]
    list_filter = ["kind", "tenant"]
    list_select_related = ["tenant", "room", "call"]
    raw_id_fields = ["tenant", "room", "call"]
    readonly_fields = ["id", "tenant", "room", "kind", "call", "data", "created_at"]


@admin.register(LiveCall)
class LiveCallAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "title", "host", "status", "scheduled_at", "started_at", "ended_at"]
    list_filter = ["status", "tenant"]
    list_select_related = ["tenant", "host"]
    search_fields = ["id", "title", "host__external_id", "stream_call_id"]
    raw_id_fields = ["tenant", "host", "room", "call", "recording"]
    readonly_fields = [
        "id",
        "tenant",
        "host",
        "room",
        "call",
        "recording",
        "status",
        "error_reason",
        "stream_call_id",
        "started_at",
        "ended_at",
        "recording_media_id",
        "recording_ready_at",
        "created_at",
        "updated_at",
    ]
    actions = ["end_live_calls"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="End the selected live calls")
    def end_live_calls(self, request: HttpRequest, queryset: QuerySet[LiveCall]) -> None:
        from django.contrib import messages

        from calls.live_services import live_call_end
        from scaiwave.api.errors import ProblemError

        ended = 0
        for live in queryset.filter(status=LiveCall.Status.LIVE):
            try:
                live_call_end(tenant=live.tenant, live_call_id=live.pk, by=None)
            except ProblemError:
                continue  # ended meanwhile
            ended += 1
        self.message_user(request, f"Ended {ended} live call(s).", messages.SUCCESS)
