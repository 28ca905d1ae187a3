"""Rooms with their members, their calls (live and recent, with who is connected to each), who is connected
to the room's own LiveKit room right now (asked of LiveKit through the gateway, via the rooms services), their
ingress, the participant mirror, bans, and the LiveKit webhooks received.

Removing a participant goes through `rooms.services.participant_remove` (LiveKit RemoveParticipant plus the
ban), after a confirmation page, and is written to the admin log. Rooms and members are read-only here:
they change through the API, whose services keep LiveKit and the events in step.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from calls.selectors import calls_for_room
from rooms import services
from rooms.livekit_gateway import LiveKitError
from rooms.models import Room, RoomBan, RoomMember, RoomParticipant
from scaiwave.admin_tools import NO_SAVE_BUTTONS, CappedCountPaginator, log_action
from scaiwave.api.errors import ProblemError
from webhooks.models.intake import LiveKitEvent


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RoomMemberInline(ReadOnlyInline):
    model = RoomMember
    fields = ("user", "power_level", "joined_at", "left_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoomMember]:
        return super().get_queryset(request).select_related("user")


class RoomOpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "open"), ("no", "closed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> QuerySet[Room]:
        if self.value() == "yes":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "livekit_name", "member_count", "connected_count", "created_at", "closed_at"]
    list_filter = [RoomOpenFilter, "tenant", ("created_at", DateFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["name", "livekit_name", "livekit_sid", "members__user__external_id"]
    readonly_fields = [
        "tenant",
        "name",
        "livekit_name",
        "livekit_sid",
        "max_participants",
        "empty_timeout",
        "metadata",
        "created_at",
        "closed_at",
    ]
    inlines = [RoomMemberInline]
    show_full_result_count = False
    paginator = CappedCountPaginator
    change_form_template = "admin/rooms/room/change_form.html"
    # Calls shown on a room's page: the live one (a room has at most one, and it is the newest) and recent ones.
    recent_calls = 10

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=Count("members", filter=Q(members__left_at__isnull=True), distinct=True),
                connected_total=Count(
                    "participants", filter=Q(participants__state=RoomParticipant.State.JOINED), distinct=True
                ),
            )
        )

    @admin.display(description="members", ordering="member_total")
    def member_count(self, room: Room) -> int:
        return int(getattr(room, "member_total", 0))

    @admin.display(description="connected", ordering="connected_total")
    def connected_count(self, room: Room) -> int:
        return int(getattr(room, "connected_total", 0))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rooms are created through the API (POST /v1/rooms), which also creates the LiveKit room

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting goes through room_delete (LiveKit first), via the API

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/participants/remove/",
                self.admin_site.admin_view(self.remove_participant_view),
                name="rooms_room_remove_participant",
            )
        ]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        room = self.get_object(request, object_id)
        context = {**NO_SAVE_BUTTONS, **(extra_context or {})}
        if room is not None:
            # Calls run in LiveKit rooms of their own: who is in a call is not in the room's own LiveKit room.
            context["room_calls"] = list(calls_for_room(room=room)[: self.recent_calls])
        if room is not None and room.is_open:
            context["live_participants"] = self._ask_livekit(request, "participants", services.participant_list, room)
            context["ingresses"] = self._ask_livekit(request, "ingress", services.ingress_list, room)
            context["can_remove"] = self.has_change_permission(request, room)
        return super().change_view(request, object_id, form_url, extra_context=context)

    @staticmethod
    def _ask_livekit(request: HttpRequest, what: str, read: Any, room: Room) -> list[dict[str, Any]] | None:
        try:
            return list(read(room=room))
        except LiveKitError as exc:
            messages.warning(request, f"Could not ask LiveKit for the room's {what}: {exc.detail}")
            return None

    def remove_participant_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        room = self.get_object(request, object_id)
        if room is None:
            raise Http404("No such room.")
        if not self.has_change_permission(request, room):
            raise PermissionDenied
        identity = (request.POST if request.method == "POST" else request.GET).get("identity", "")
        if not identity:
            raise Http404("Which participant?")
        change_url = reverse("admin:rooms_room_change", args=[room.pk])
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": "Remove a participant",
                "opts": self.opts,
                "room": room,
                "identity": identity,
                "change_url": change_url,
            }
            return TemplateResponse(request, "admin/rooms/room/remove_participant.html", context)
        try:
            ban = services.participant_remove(room=room, identity=identity)
        except ProblemError as exc:
            self.message_user(request, f"{identity}: {exc.detail}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        until = f", banned until {ban.until:%Y-%m-%d %H:%M:%S}" if ban else ""
        log_action(request, room, f"Removed participant {identity}{until}")
        self.message_user(request, f"Removed {identity} from {room.name}{until}.", messages.SUCCESS)
        return HttpResponseRedirect(change_url)


@admin.register(RoomParticipant)
class RoomParticipantAdmin(admin.ModelAdmin):
    list_display = ["identity", "name", "room", "room_tenant", "state", "kind", "joined_at", "left_at", "left_reason"]
    list_filter = ["state", "kind", ("joined_at", DateFieldListFilter)]
    list_select_related = ["room", "room__tenant"]
    search_fields = ["identity", "sid", "room__name", "room__livekit_name"]
    readonly_fields = [f.name for f in RoomParticipant._meta.fields]
    show_full_result_count = False
    paginator = CappedCountPaginator

    @admin.display(description="tenant", ordering="room__tenant__name")
    def room_tenant(self, participant: RoomParticipant) -> str:
        return participant.room.tenant.name

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the mirror is written by LiveKit's webhooks only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RoomBan)
class RoomBanAdmin(admin.ModelAdmin):
    list_display = ["identity", "room_name", "tenant", "until", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["identity", "room_name"]
    readonly_fields = ["tenant", "room_name", "identity", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bans come from removing a participant


@admin.register(LiveKitEvent)
class LiveKitEventAdmin(admin.ModelAdmin):
    """Every webhook LiveKit sent, as stored by the intake: read-only."""

    list_display = ["event", "room_name", "participant_identity", "egress_id", "outcome", "created_at", "duplicates"]
    list_filter = ["outcome", "event", ("created_at", DateFieldListFilter)]
    search_fields = ["=event_id", "room_name", "participant_identity", "=egress_id", "=ingress_id"]
    readonly_fields = [f.name for f in LiveKitEvent._meta.fields]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
