"""Operators see calls, participants and who was connected when (an SVG drawn on the server); ending a
call goes through `call_end`'s sibling for operators, after a confirmation page, never a bare status update."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import DateFieldListFilter
from django.contrib.admin.utils import quote
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from calls.models import Call, CallParticipant, LiveCall, TimelineEntry
from calls.services import call_end_by_operator, call_participant_remove_by_operator
from scaiwave.admin_timeline import call_timeline_svg
from scaiwave.admin_tools import NO_SAVE_BUTTONS, CappedCountPaginator, run_confirmed


class CallParticipantInline(admin.TabularInline):
    model = CallParticipant
    extra = 0
    can_delete = False
    fields = (
        "user",
        "connected",
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
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[CallParticipant]:
        return super().get_queryset(request).select_related("user")

    @admin.display(boolean=True, description="connected now")
    def connected(self, participant: CallParticipant) -> bool:
        return participant.is_connected

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # LiveKit's webhooks are the truth about who is connected


def _participants_counted(*, connected: bool) -> Subquery:
    """A correlated COUNT per listed call (computed for the page's rows only, not GROUP BY over the table)."""
    rows = CallParticipant.objects.filter(call=OuterRef("pk"))
    if connected:
        rows = rows.filter(joined_at__isnull=False, left_at__isnull=True)
    return Subquery(rows.order_by().values("call").annotate(n=Count("*")).values("n"), output_field=IntegerField())


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "room",
        "type",
        "status",
        "initiator",
        "participant_count",
        "connected_count",
        "created_at",
        "ended_at",
        "end_reason",
    ]
    list_filter = ["status", "type", "tenant", ("created_at", DateFieldListFilter)]
    list_select_related = ["tenant", "room", "initiator"]
    search_fields = ["=id", "room__name", "initiator__external_id", "participants__user__external_id"]
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
        "timeline_chart",
        "recording_links",
    ]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "room", "type", "status", "initiator", "livekit_room"]}),
        (
            "Times",
            {"fields": ["created_at", "ring_expires_at", "started_at", "ended_at", "end_reason", "failure_reason"]},
        ),
        ("Who was connected when", {"fields": ["timeline_chart"], "classes": ["call-timeline-fieldset"]}),
        ("Recordings", {"fields": ["recording_links"]}),
    ]
    inlines = [CallParticipantInline]
    actions = ["end_calls"]
    change_form_template = "admin/calls/call/change_form.html"
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                participant_total=Coalesce(_participants_counted(connected=False), 0),
                connected_total=Coalesce(_participants_counted(connected=True), 0),
            )
        )

    @admin.display(description="participants", ordering="participant_total")
    def participant_count(self, call: Call) -> int:
        return int(getattr(call, "participant_total", 0))

    @admin.display(description="connected", ordering="connected_total")
    def connected_count(self, call: Call) -> int:
        return int(getattr(call, "connected_total", 0))

    @admin.display(description="timeline")
    def timeline_chart(self, call: Call) -> SafeString:
        return call_timeline_svg(call)

    @admin.display(description="recordings")
    def recording_links(self, call: Call) -> SafeString | str:
        recordings = list(call.recordings.order_by("created_at").only("id", "status", "created_at"))
        if not recordings:
            return "none"
        return format_html_join(
            "",
            '<a href="{}">{}</a> {}<br>',
            (
                (reverse("admin:recordings_recording_change", args=[quote(r.pk)]), r.pk, r.get_status_display())
                for r in recordings
            ),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # calls end (through the action); their history stays

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        call = self.get_object(request, object_id)
        can_end = call is not None and call.is_live and self.has_change_permission(request, call)
        context = {**NO_SAVE_BUTTONS, "can_end": can_end, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    @admin.action(description="End the selected live calls", permissions=["change"])
    def end_calls(self, request: HttpRequest, queryset: QuerySet[Call]) -> HttpResponse | None:
        return run_confirmed(
            self,
            request,
            queryset,
            title="End calls",
            explanation=(
                "Each live call below ends for everyone: its participants are disconnected, its recordings "
                "stopped and its LiveKit room closed. Calls that already ended are left as they are."
            ),
            run=lambda call: "ended by an operator" if call_end_by_operator(call_id=call.pk) else None,
        )


@admin.register(CallParticipant)
class CallParticipantAdmin(admin.ModelAdmin):
    """Who is (or was) in which call; an operator can remove a connected participant from a live call."""

    list_display = ["call", "user", "joined_at", "left_at", "leave_reason", "audio_on", "video_on"]
    list_filter = ["leave_reason", "call__status"]
    list_select_related = ["call", "user"]
    search_fields = ["call__id", "user__external_id", "user__display_name"]
    raw_id_fields = ["call", "user"]
    readonly_fields = [f.name for f in CallParticipant._meta.fields]
    show_full_result_count = False
    actions = ["remove_from_call"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # audit rows: removing someone goes through call_participant_remove_by_operator

    def has_remove_permission(self, request: HttpRequest) -> bool:
        # Removing someone is an act on the call: it needs change rights on calls, which support lacks.
        return request.user.has_perm("calls.change_call")

    @admin.action(description="Remove from the call (disconnect in LiveKit)", permissions=["remove"])
    def remove_from_call(self, request: HttpRequest, queryset: QuerySet[CallParticipant]) -> HttpResponse | None:
        def run(participant: CallParticipant) -> str | None:
            removed = call_participant_remove_by_operator(call_id=participant.call_id, user_id=participant.user_id)
            return "removed and disconnected" if removed else None

        return run_confirmed(
            self, request, queryset, title="Remove participants from their calls",
            explanation="Each connected participant below is disconnected in LiveKit and recorded as removed; "
            "a call whose last participant is removed ends. Participants not connected are left as they are.",
            run=run,
        )  # fmt: skip


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_display = ["id", "tenant", "room", "kind", "call", "created_at"]
    list_filter = ["kind", "tenant"]
    list_select_related = ["tenant", "room", "call"]
    raw_id_fields = ["tenant", "room", "call"]
    readonly_fields = ["id", "tenant", "room", "kind", "call", "data", "created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a room's history: no raw delete of audit rows


# --- Live calls (document 003) -----------------------------------------------------------------


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
