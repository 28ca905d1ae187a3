"""The ScaiWave calls surface: `/v1/calls/...` with the `{"data": ...}` envelope and `SW_CALL_*` codes,
plus a room's call history and timeline. Views authenticate, validate, call one service or
selector, and serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import errors, selectors, services
from calls.serializers import (
    CallHistoryItemSerializer,
    CallListQuerySerializer,
    CallStateSerializer,
    CallTicketSerializer,
    InitiateRequestSerializer,
    ListQuerySerializer,
    TimelineEntrySerializer,
)
from rooms.models import Room
from rooms.selectors import member_get, room_get_open
from scaiwave.api.auth import Principal
from scaiwave.api.errors import ProblemError
from scaiwave.api.idempotency import idempotent
from scaiwave.api.pagination import paginate
from scaiwave.api.parsers import JSONWhateverTheType
from scaiwave.api.permissions import IsTenantPrincipal, IsTenantUser, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.models import Tenant, TenantUser

TAG = "Calls (ScaiWave)"

TicketEnvelope = inline_serializer("CallTicketEnvelope", {"data": CallTicketSerializer()})
StateEnvelope = inline_serializer("CallStateEnvelope", {"data": CallStateSerializer()})
HistoryPage = inline_serializer(
    "CallHistoryPage",
    {"data": CallHistoryItemSerializer(many=True), "nextCursor": serializers.CharField(allow_null=True)},
)
TimelinePage = inline_serializer(
    "RoomTimelinePage",
    {"data": TimelineEntrySerializer(many=True), "nextCursor": serializers.CharField(allow_null=True)},
)

P_NOT_FOUND = problem("No such call (also another tenant's call)", errors.NOT_FOUND)
P_ENDED = problem("The call is no longer active", errors.ENDED)
P_FORBIDDEN = problem("Not a member of the call's room, or not allowed", errors.FORBIDDEN)
P_LIVEKIT = problem("LiveKit could not be reached", errors.LIVEKIT_UNREACHABLE)
P_INVALID = problem("The request is not valid", errors.INVALID_REQUEST)
P_ROOM = problem("No such room", errors.ROOM_NOT_FOUND)

EXAMPLE_TICKET = OpenApiExample(
    "ticket",
    value={
        "data": {
            "call_id": "call-3k9f0c2m1x7q8w4e5r6t",
            "livekit_url": "wss://livekit.example.com",
            "livekit_token": "eyJhbGciOiJIUzI1NiJ9…",
            "livekit_room": "scaiwave-call-3k9f0c2m1x7q8w4e5r6t",
        }
    },
    response_only=True,
)
EXAMPLE_STATE = OpenApiExample(
    "active video call",
    value={
        "data": {
            "id": "call-3k9f0c2m1x7q8w4e5r6t",
            "room_id": "standup",
            "type": "video",
            "status": "active",
            "started_at": "2026-11-21T12:00:03Z",
            "ended_at": None,
            "initiator_id": "5e4d",
            "participants": [
                {
                    "participant_id": "5e4d",
                    "joined_at": "2026-11-21T12:00:01Z",
                    "video_on": True,
                    "audio_on": True,
                    "left_at": None,
                }
            ],
            "recordings": [],
        }
    },
    response_only=True,
)
# The pattern is the id's shape (scaiwave.ids); it also tells callers that /v1/calls/initiate and /v1/calls/webhook
# are other resources, not calls named "initiate" or "webhook".
CALL_ID = OpenApiParameter(
    "call_id", {"type": "string", "pattern": "^call-[0-9a-z]+$"}, OpenApiParameter.PATH, description="call-…"
)
ROOM_ID = OpenApiParameter("room_id", str, OpenApiParameter.PATH, description="The room's id (roomId)")


def _invalid(serializer: serializers.Serializer) -> ProblemError:
    return ProblemError(400, errors.INVALID_REQUEST, "The request is not valid.", errors=serializer.errors)


def _user_principal(request: Request) -> tuple[Tenant, TenantUser]:
    principal = principal_of(request)
    assert principal.user is not None  # guaranteed by IsTenantUser
    return principal.tenant, principal.user


class CallsView(APIView):
    """Base of the user-facing calls endpoints: DRF's own errors carry SW_CALL_* codes."""

    permission_classes = [IsTenantUser]
    problem_codes = {"400": errors.INVALID_REQUEST, "403": errors.FORBIDDEN, "404": errors.NOT_FOUND}
    content_negotiation_class = JSONWhateverTheType  # document 000's curl examples label JSON as a form


class CallInitiateView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="Start a call in a room",
        description="Rings every other member of the room (`swp.call.invite`) and returns the initiator's "
        "LiveKit token. One live call per room: a second initiate answers 409 with the live call's `call_id`. "
        "Honours `Idempotency-Key`.",
        request=InitiateRequestSerializer,
        examples=[OpenApiExample("audio call", value={"room_id": "standup", "type": "audio"}, request_only=True)],
        responses={
            201: TicketEnvelope,
            400: P_INVALID,
            403: P_FORBIDDEN,
            404: P_ROOM,
            409: problem("The room already has a live call (its id is in `call_id`)", errors.ALREADY_ACTIVE),
            502: P_LIVEKIT,
            **PROBLEM_RESPONSES,
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        tenant, user = _user_principal(request)
        serializer = InitiateRequestSerializer(data=request.data)
        if not serializer.is_valid():
            raise _invalid(serializer)
        ticket = services.call_initiate(
            tenant=tenant,
            user=user,
            room_name=serializer.validated_data["room_id"],
            type=serializer.validated_data["type"],
        )
        return Response({"data": CallTicketSerializer(ticket).data}, status=201)


_ACTION_RESPONSES = {
    200: StateEnvelope,
    403: P_FORBIDDEN,
    404: P_NOT_FOUND,
    409: P_ENDED,
    **PROBLEM_RESPONSES,
}


def _state_response(tenant: Tenant, call_id: str) -> Response:
    call = selectors.call_get(tenant=tenant, call_id=call_id)
    if call is None:  # pragma: no cover - the service just found it
        raise errors.call_not_found()
    return Response({"data": CallStateSerializer(call).data})


class CallJoinView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="Join an in-flight call",
        description="Returns a LiveKit token scoped to this caller and the call's room. The caller counts as "
        "joined once LiveKit reports the connection (webhook); a ringing call becomes active then.",
        request=None,
        parameters=[CALL_ID],
        responses={
            200: TicketEnvelope,
            403: P_FORBIDDEN,
            404: P_NOT_FOUND,
            409: P_ENDED,
            502: P_LIVEKIT,
            **PROBLEM_RESPONSES,
        },
        examples=[EXAMPLE_TICKET],
    )
    def post(self, request: Request, call_id: str) -> Response:
        tenant, user = _user_principal(request)
        ticket = services.call_join(tenant=tenant, user=user, call_id=call_id)
        return Response({"data": CallTicketSerializer(ticket).data})


class CallLeaveView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="Leave",
        description="Before anyone answered, the initiator leaving cancels the call and a callee leaving declines "
        "it; once active, the last participant leaving ends it. Returns the call state.",
        request=None,
        parameters=[CALL_ID],
        responses=_ACTION_RESPONSES,
        examples=[EXAMPLE_STATE],
    )
    def post(self, request: Request, call_id: str) -> Response:
        tenant, user = _user_principal(request)
        services.call_leave(tenant=tenant, user=user, call_id=call_id)
        return _state_response(tenant, call_id)


class CallRejectView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="Decline a ringing call",
        description="Stops the ring on the caller's other devices. When every callee declined, the call is "
        "`rejected` and posted to the room's timeline. The initiator cannot reject (403).",
        request=None,
        parameters=[CALL_ID],
        responses=_ACTION_RESPONSES,
        examples=[EXAMPLE_STATE],
    )
    def post(self, request: Request, call_id: str) -> Response:
        tenant, user = _user_principal(request)
        services.call_reject(tenant=tenant, user=user, call_id=call_id)
        return _state_response(tenant, call_id)


class CallEndView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="End the call for everyone",
        description="Allowed to the initiator or a room member with power >= 50. A ringing call becomes "
        "`cancelled`, an active one `ended`; the LiveKit room is closed.",
        request=None,
        parameters=[CALL_ID],
        responses=_ACTION_RESPONSES,
        examples=[EXAMPLE_STATE],
    )
    def post(self, request: Request, call_id: str) -> Response:
        tenant, user = _user_principal(request)
        services.call_end(tenant=tenant, user=user, call_id=call_id)
        return _state_response(tenant, call_id)


class CallStateView(CallsView):
    @extend_schema(
        tags=[TAG],
        summary="Call state",
        description="Readable by current members of the call's room. `participants` lists everyone who "
        "connected; `audio_on`/`video_on` of a live call are checked with LiveKit (a client's own mute sends no "
        "webhook).",
        parameters=[CALL_ID],
        responses={200: StateEnvelope, 403: P_FORBIDDEN, 404: P_NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[EXAMPLE_STATE],
    )
    def get(self, request: Request, call_id: str) -> Response:
        tenant, user = _user_principal(request)
        call = selectors.call_get(tenant=tenant, call_id=call_id)
        if call is None:
            raise errors.call_not_found()
        # Document 000: SW_CALL_FORBIDDEN when the caller isn't in the room, even if they were in this call.
        if member_get(room=call.room, user=user) is None:
            raise errors.forbidden("You are not a member of this call's room.")
        if services.call_media_refresh(call=call):
            call = selectors.call_get(tenant=tenant, call_id=call_id) or call
        return Response({"data": CallStateSerializer(call).data})


# --- A room's calls and timeline (ours; member or server key) -------------------------------------


class RoomScopedView(APIView):
    permission_classes = [IsTenantPrincipal]
    problem_codes = {"400": errors.INVALID_REQUEST, "403": errors.FORBIDDEN, "404": errors.ROOM_NOT_FOUND}

    def room_for(self, principal: Principal, room_id: str) -> Room:
        room = room_get_open(tenant=principal.tenant, name=room_id)
        if room is None:
            raise errors.room_not_found()
        if principal.user is not None and member_get(room=room, user=principal.user) is None:
            raise errors.forbidden("You are not a member of this room.")
        return room


class RoomCallsView(RoomScopedView):
    @extend_schema(
        tags=[TAG],
        summary="A room's call history",
        description="Newest first, cursor-paginated; filter by `status` (e.g. `missed`). A room member or the "
        "tenant's server key.",
        parameters=[ROOM_ID, CallListQuerySerializer],
        responses={200: HistoryPage, 400: P_INVALID, 403: P_FORBIDDEN, 404: P_ROOM, **PROBLEM_RESPONSES},
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.room_for(principal_of(request), room_id)
        query = CallListQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise _invalid(query)
        page = paginate(
            selectors.calls_for_room(room=room, status=query.validated_data.get("status")),
            cursor=query.validated_data.get("cursor") or None,
            limit=query.validated_data.get("limit", 50),
        )
        return Response({"data": CallHistoryItemSerializer(page.items, many=True).data, "nextCursor": page.next_cursor})


class RoomTimelineView(RoomScopedView):
    @extend_schema(
        tags=[TAG],
        summary="A room's timeline",
        description="Missed and rejected calls, transcripts posted back, ...; newest first, cursor-paginated. "
        "A room member or the tenant's server key.",
        parameters=[ROOM_ID, ListQuerySerializer],
        responses={200: TimelinePage, 400: P_INVALID, 403: P_FORBIDDEN, 404: P_ROOM, **PROBLEM_RESPONSES},
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.room_for(principal_of(request), room_id)
        query = ListQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise _invalid(query)
        page = paginate(
            selectors.timeline_for_room(room=room),
            cursor=query.validated_data.get("cursor") or None,
            limit=query.validated_data.get("limit", 50),
        )
        return Response({"data": TimelineEntrySerializer(page.items, many=True).data, "nextCursor": page.next_cursor})
