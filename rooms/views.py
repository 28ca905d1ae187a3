"""The rtcstack surface (document 001): tokens, rooms, participants, ingress; plus our member endpoints.

All X-API-Key (a tenant's server). Views validate, call one service, and render. Another tenant's
room is a 404, like a room that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms import services
from rooms.models import Room
from rooms.selectors import member_list, room_list_open
from rooms.serializers import (
    IngressCreateSerializer,
    IngressInfoSerializer,
    IngressListSerializer,
    LiveKitRoomSerializer,
    MemberListSerializer,
    MemberSerializer,
    MemberSetSerializer,
    MuteSerializer,
    ParticipantListSerializer,
    RoomCreateSerializer,
    RoomListSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
    member_id_from_path,
)
from scaiwave.api.idempotency import idempotent
from scaiwave.api.pagination import paginate, parse_limit
from scaiwave.api.permissions import IsTenantServer, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.audit import actor_of

NOT_FOUND = {404: problem("Room not found", "room_not_found")}
BAD_REQUEST = {400: problem("Invalid body; `errors` lists the fields", "validation_failed")}
UPSTREAM = {
    502: problem("LiveKit could not be reached or refused the request", "livekit_unreachable"),
    503: problem("No LiveKit server is configured", "livekit_not_configured"),
}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same key and body replays the first response; same key, other body: 422.",
)
# GET /v1/rooms answers every open room at once (document 001: "list all active rooms"), up to this many; a
# tenant with more gets `nextCursor` to read on. `limit` and `cursor` stay optional.
ROOM_LIST_CAP = 1000
ROOM_LIST_PAGING = [
    OpenApiParameter(
        "limit", int, OpenApiParameter.QUERY, required=False, description=f"1..{ROOM_LIST_CAP}, default {ROOM_LIST_CAP}"
    ),
    OpenApiParameter("cursor", str, OpenApiParameter.QUERY, required=False, description="`nextCursor` of a page"),
]
PAGING = [
    OpenApiParameter("limit", int, OpenApiParameter.QUERY, required=False, description="1..100, default 50"),
    OpenApiParameter("cursor", str, OpenApiParameter.QUERY, required=False, description="`nextCursor` of a page"),
]

ROOM_EXAMPLE = {
    "sid": "RM_xKz7Gm2pQv4N",
    "name": "my-room",
    "emptyTimeout": 300,
    "departureTimeout": 20,
    "maxParticipants": 10,
    "creationTime": "1735732800",
    "creationTimeMs": "1735732800000",
    "turnPassword": "",
    "enabledCodecs": [{"mime": "audio/opus", "fmtpLine": ""}],
    "metadata": "",
    "numParticipants": 0,
    "numPublishers": 0,
    "activeRecording": False,
}
PARTICIPANT_EXAMPLE = {
    "sid": "PA_9fQ2cL8mTw3R",
    "identity": "user-123",
    "state": "ACTIVE",
    "tracks": [{"sid": "TR_AMkq3Yc8Lw2D", "type": "AUDIO", "name": "mic", "muted": False, "source": "MICROPHONE"}],
    "metadata": '{"team":"blue"}',
    "joinedAt": "1735732810",
    "joinedAtMs": "1735732810120",
    "name": "Alice",
    "isPublisher": True,
    "kind": "STANDARD",
    "attributes": {},
}
INGRESS_EXAMPLE = {
    "ingressId": "IN_4sXb9TqLm2Zc",
    "name": "Ingress Stream",
    "streamKey": "Hk3vQ8sLp2Wx",
    "url": "rtmp://127.0.0.1:1935/live",
    "inputType": "RTMP_INPUT",
    "bypassTranscoding": False,
    "roomName": "my-room",
    "participantIdentity": "ingress-1f2e3d4c5b6a",
    "participantName": "Ingress Stream",
    "participantMetadata": "",
    "reusable": True,
}


class RoomsAPIView(APIView):
    permission_classes = [IsTenantServer]

    def room(self, request: Request, room_id: str) -> Room:
        return services.room_get_or_404(tenant=principal_of(request).tenant, name=room_id)


def _validated(serializer_class: Any, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _token_response(request: Request, issue: Callable[..., services.IssuedToken]) -> Response:
    """POST /v1/token and /v1/token/refresh: the same body, a different service."""
    data = _validated(TokenRequestSerializer, request)
    issued = issue(
        tenant=principal_of(request).tenant,
        room_name=data["roomId"],
        identity=data["userId"],
        name=data["name"],
        role=data["role"],
        metadata=data["metadata"],
    )
    return Response({"token": issued.token, "url": issued.url, "expiresAt": services.iso_ms(issued.expires_at)})


TOKEN_EXAMPLES = [
    OpenApiExample(
        "participant",
        value={"roomId": "my-room", "userId": "user-123", "name": "Alice", "role": "participant", "metadata": {}},
        request_only=True,
    ),
    OpenApiExample(
        "token",
        value={
            "token": "eyJhbGciOiJIUzI1NiJ9...",
            "url": "wss://livekit.example.com",
            "expiresAt": "2025-01-01T12:30:00.000Z",
        },
        response_only=True,
    ),
]


class TokenView(RoomsAPIView):
    @extend_schema(
        operation_id="token_issue",
        summary="Issue a LiveKit access token for a participant",
        description=(
            "Grants by role: host = publish, subscribe, publish data, roomAdmin; moderator and participant = "
            'publish, subscribe, publish data; viewer = subscribe only. "Mute others" (host, moderator) is '
            "enforced by ScaiWave's moderation endpoints, not by a LiveKit grant. The room does not need to exist: "
            "LiveKit creates it on first join. TTL: LIVEKIT_TOKEN_TTL."
        ),
        tags=["tokens"],
        request=TokenRequestSerializer,
        responses={200: TokenResponseSerializer, **BAD_REQUEST, **PROBLEM_RESPONSES, 503: UPSTREAM[503]},
        examples=TOKEN_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        return _token_response(request, services.token_issue)


class TokenRefreshView(RoomsAPIView):
    @extend_schema(
        operation_id="token_refresh",
        summary="Re-issue a token (same body as POST /v1/token)",
        description=(
            "Refused with 403 `participant_banned` for an identity kicked from the room within "
            "LIVEKIT_KICK_BAN_SECONDS, and 403 `member_removed` for an identity removed from the room's members."
        ),
        tags=["tokens"],
        request=TokenRequestSerializer,
        responses={
            200: TokenResponseSerializer,
            **BAD_REQUEST,
            **PROBLEM_RESPONSES,
            403: problem("The identity was kicked (ban window) or removed from the room", "participant_banned"),
            503: UPSTREAM[503],
        },
        examples=TOKEN_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        return _token_response(request, services.token_refresh)


class RoomsView(RoomsAPIView):
    @extend_schema(
        operation_id="room_create",
        summary="Create a new room",
        description="Creates the LiveKit room. `name` in the answer is the roomId. Emits `room_created`.",
        tags=["rooms"],
        request=RoomCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OpenApiResponse(LiveKitRoomSerializer, description="LiveKit Room object"),
            **BAD_REQUEST,
            **PROBLEM_RESPONSES,
            409: problem("An open room with that name exists (`room_exists`)", "room_exists"),
            422: problem("Idempotency-Key reused with another body", "idempotency_key_reused"),
            **UPSTREAM,
        },
        examples=[
            OpenApiExample(
                "create",
                value={"name": "my-room", "maxParticipants": 10, "emptyTimeout": 300, "metadata": ""},
                request_only=True,
            ),
            OpenApiExample("room", value=ROOM_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = _validated(RoomCreateSerializer, request)
        room, answer = services.room_create_answered(
            tenant=principal_of(request).tenant,
            name=data["name"],
            max_participants=data["maxParticipants"],
            empty_timeout=data["emptyTimeout"],
            metadata=data["metadata"],
        )
        return Response(services.room_json(room, answer), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="room_list",
        summary="List all active rooms",
        description=(
            f"Every open room, newest first, as LiveKit Room objects, up to {ROOM_LIST_CAP}; beyond that "
            "`nextCursor` reads on (null when all are listed)."
        ),
        tags=["rooms"],
        parameters=ROOM_LIST_PAGING,
        responses={
            200: RoomListSerializer,
            **PROBLEM_RESPONSES,
            400: problem("Bad limit or cursor", "invalid_cursor"),
            **UPSTREAM,
        },
        examples=[OpenApiExample("rooms", value={"rooms": [ROOM_EXAMPLE], "nextCursor": None}, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        page = paginate(
            room_list_open(tenant=principal_of(request).tenant),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit"), default=ROOM_LIST_CAP, maximum=ROOM_LIST_CAP),
        )
        return Response({"rooms": services.rooms_json(page.items), "nextCursor": page.next_cursor})


class RoomDetailView(RoomsAPIView):
    @extend_schema(
        operation_id="room_get",
        summary="Get a single room",
        tags=["rooms"],
        responses={200: LiveKitRoomSerializer, **NOT_FOUND, **PROBLEM_RESPONSES, **UPSTREAM},
        examples=[OpenApiExample("room", value=ROOM_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.room(request, room_id)
        return Response(services.rooms_json([room])[0])

    @extend_schema(
        operation_id="room_delete",
        summary="Close and delete a room",
        description=(
            "Disconnects everyone in LiveKit, ends the room's calls, recordings and ingress. Emits `room_closed`."
        ),
        tags=["rooms"],
        request=None,
        responses={204: None, **NOT_FOUND, **PROBLEM_RESPONSES, **UPSTREAM},
    )
    def delete(self, request: Request, room_id: str) -> Response:
        services.room_delete(room=self.room(request, room_id), actor=actor_of(principal_of(request)))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ParticipantsView(RoomsAPIView):
    @extend_schema(
        operation_id="participant_list",
        summary="List all participants in a room",
        description="LiveKit's ListParticipants, as ParticipantInfo objects.",
        tags=["participants"],
        responses={200: ParticipantListSerializer, **NOT_FOUND, **PROBLEM_RESPONSES, **UPSTREAM},
        examples=[OpenApiExample("participants", value={"participants": [PARTICIPANT_EXAMPLE]}, response_only=True)],
    )
    def get(self, request: Request, room_id: str) -> Response:
        return Response({"participants": services.participant_list(room=self.room(request, room_id))})


class ParticipantDetailView(RoomsAPIView):
    @extend_schema(
        operation_id="participant_remove",
        summary="Remove (kick) a participant",
        description=(
            "`participantId` is the participant's identity (the token's userId). The identity cannot refresh "
            "its token for this room for LIVEKIT_KICK_BAN_SECONDS."
        ),
        tags=["participants"],
        request=None,
        responses={
            204: None,
            404: problem("Room or participant not found", "participant_not_found"),
            **PROBLEM_RESPONSES,
            **UPSTREAM,
        },
    )
    def delete(self, request: Request, room_id: str, participant_id: str) -> Response:
        services.participant_remove(room=self.room(request, room_id), identity=participant_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ParticipantMuteView(RoomsAPIView):
    @extend_schema(
        operation_id="participant_mute",
        summary="Server-side mute a participant's track",
        tags=["participants"],
        request=MuteSerializer,
        responses={
            204: None,
            **BAD_REQUEST,
            404: problem("Room, participant or track not found", "track_not_found"),
            **PROBLEM_RESPONSES,
            **UPSTREAM,
        },
        examples=[OpenApiExample("mute", value={"trackSid": "TR_AMkq3Yc8Lw2D"}, request_only=True)],
    )
    def post(self, request: Request, room_id: str, participant_id: str) -> Response:
        room = self.room(request, room_id)
        data = _validated(MuteSerializer, request)
        services.participant_mute(room=room, identity=participant_id, track_sid=data["trackSid"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class IngressView(RoomsAPIView):
    @extend_schema(
        operation_id="ingress_create",
        summary="Create an ingress endpoint",
        description="An RTMP or WHIP endpoint publishing into the room; the answer includes `url` and `streamKey`.",
        tags=["ingress"],
        request=IngressCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OpenApiResponse(IngressInfoSerializer, description="LiveKit IngressInfo object"),
            **BAD_REQUEST,
            **NOT_FOUND,
            **PROBLEM_RESPONSES,
            422: problem("Idempotency-Key reused with another body", "idempotency_key_reused"),
            **UPSTREAM,
        },
        examples=[
            OpenApiExample("rtmp", value={"type": "rtmp", "participantName": "Ingress Stream"}, request_only=True),
            OpenApiExample("ingress", value=INGRESS_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    @idempotent
    def post(self, request: Request, room_id: str) -> Response:
        room = self.room(request, room_id)
        data = _validated(IngressCreateSerializer, request)
        info = services.ingress_create(
            room=room,
            input_type=data["type"],
            participant_name=data["participantName"],
            participant_identity=data["participantIdentity"],
        )
        return Response(info, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="ingress_list",
        summary="List ingress endpoints for a room",
        tags=["ingress"],
        responses={200: IngressListSerializer, **NOT_FOUND, **PROBLEM_RESPONSES, **UPSTREAM},
        examples=[OpenApiExample("ingress", value={"ingress": [INGRESS_EXAMPLE]}, response_only=True)],
    )
    def get(self, request: Request, room_id: str) -> Response:
        return Response({"ingress": services.ingress_list(room=self.room(request, room_id))})


class IngressDetailView(RoomsAPIView):
    @extend_schema(
        operation_id="ingress_delete",
        summary="Delete an ingress endpoint",
        tags=["ingress"],
        request=None,
        responses={
            204: None,
            404: problem("Room or ingress not found", "ingress_not_found"),
            **PROBLEM_RESPONSES,
            **UPSTREAM,
        },
    )
    def delete(self, request: Request, room_id: str, ingress_id: str) -> Response:
        services.ingress_delete(
            room=self.room(request, room_id), ingress_id=ingress_id, actor=actor_of(principal_of(request))
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


MEMBER_EXAMPLE = {"userId": "user-123", "name": "Alice", "powerLevel": 50, "joinedAt": "2025-01-01T12:00:00Z"}


class MembersView(RoomsAPIView):
    @extend_schema(
        operation_id="member_list",
        summary="List a room's members (ScaiWave)",
        description="Current members with their power levels, highest first.",
        tags=["members"],
        parameters=PAGING,
        responses={200: MemberListSerializer, **NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[
            OpenApiExample("members", value={"members": [MEMBER_EXAMPLE], "nextCursor": None}, response_only=True)
        ],
    )
    def get(self, request: Request, room_id: str) -> Response:
        page = paginate(
            member_list(room=self.room(request, room_id)),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
            order=("-power_level", "pk"),
        )
        return Response({"members": MemberSerializer(page.items, many=True).data, "nextCursor": page.next_cursor})


class MemberDetailView(RoomsAPIView):
    @extend_schema(
        operation_id="member_set",
        summary="Add a member or change their power level (ScaiWave)",
        description=(
            "Creates the user on first use. Power 50+ may end others' calls and record on the calls surface. "
            "201 when the user became a member, 200 when an existing membership was updated."
        ),
        tags=["members"],
        request=MemberSetSerializer,
        responses={
            200: MemberSerializer,
            201: MemberSerializer,
            **BAD_REQUEST,
            **NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
        examples=[
            OpenApiExample("set", value={"powerLevel": 50, "name": "Alice"}, request_only=True),
            OpenApiExample("member", value=MEMBER_EXAMPLE, response_only=True),
        ],
    )
    def put(self, request: Request, room_id: str, user_id: str) -> Response:
        user_id = member_id_from_path(user_id)
        room = self.room(request, room_id)
        data = _validated(MemberSetSerializer, request)
        member, created = services.member_set(
            room=room, external_id=user_id, power_level=data["powerLevel"], name=data["name"]
        )
        return Response(
            MemberSerializer(member).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="member_remove",
        summary="Remove a member (ScaiWave)",
        description="The removed user can no longer refresh a LiveKit token for this room.",
        tags=["members"],
        request=None,
        responses={204: None, 404: problem("Room or member not found", "member_not_found"), **PROBLEM_RESPONSES},
    )
    def delete(self, request: Request, room_id: str, user_id: str) -> Response:
        user_id = member_id_from_path(user_id)
        services.member_remove(
            room=self.room(request, room_id), external_id=user_id, actor=actor_of(principal_of(request))
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
