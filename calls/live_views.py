"""The live-calls surface: document 003's `POST /v1/live/calls`, and ours around it (list, read, start,
end, token, delete). Views authenticate, validate, call one service or selector, and serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import live_selectors, live_services
from calls.live_serializers import (
    LiveCallCreateSerializer,
    LiveCallListQuerySerializer,
    LiveCallSerializer,
    LiveCallTokenSerializer,
)
from calls.models import LiveCall
from scaiwave.api.auth import user_get_or_create
from scaiwave.api.errors import ProblemError
from scaiwave.api.idempotency import idempotent
from scaiwave.api.pagination import paginate
from scaiwave.api.permissions import IsTenantPrincipal, IsTenantUser, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.models import TenantUser

TAG = "Live calls (Loop Live)"

ProviderError = inline_serializer(
    "LiveProviderError",
    {
        "error": serializers.CharField(help_text="provider_error | provider_not_configured"),
        "message": serializers.CharField(),
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
    },
)


def _provider_problem(status: int, code: str, description: str) -> OpenApiResponse:
    message = {
        "provider_error": "The streaming provider (LiveKit) failed: LiveKit could not be reached.",
        "provider_not_configured": "No streaming provider is configured.",
    }[code]
    return OpenApiResponse(
        response=ProviderError,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={
                    "type": f"https://scaiwave.dev/problems/{code.replace('_', '-')}",
                    "title": description,
                    "status": status,
                    "detail": message,
                    "code": code,
                    "error": code,
                    "message": message,
                },
                response_only=True,
            )
        ],
    )


LiveCallPage = inline_serializer(
    "LiveCallPage",
    {
        "data": LiveCallSerializer(many=True),
        "next_cursor": serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page"),
    },
)
P_502 = _provider_problem(502, "provider_error", "Streaming provider error")
P_503 = _provider_problem(503, "provider_not_configured", "Streaming provider not configured")
P_NOT_FOUND = problem("No such live call (also another tenant's)", "live_call_not_found")
P_CONFLICT = problem("The live call is not in a status that allows this", "live_call_state_conflict")
P_INVALID = problem("The request is not valid; `errors` lists the fields", "validation_failed")
P_FORBIDDEN = problem("Not the host (or host_user_id is not the caller)", "forbidden")

LIVE_CALL_ID = OpenApiParameter("live_call_id", str, OpenApiParameter.PATH, description="The live call's uuid")

EXAMPLE_CALL = {
    "id": "5f0c1e1a-7d3b-4c55-9a51-2f4b6c1d9e20",
    "host_user_id": "alice",
    "title": "Friday AMA",
    "scheduled_at": "2026-11-27T17:00:00Z",
    "started_at": None,
    "ended_at": None,
    "stream_call_id": "tn_8k2m--live-5f0c1e1a-7d3b-4c55-9a51-2f4b6c1d9e20",
    "stream_call_type": "livestream",
    "recording_url": None,
    "recording_ready_at": None,
    "status": "scheduled",
    "error_reason": None,
    "metadata": {"topic": "roadmap"},
    "created_at": "2026-11-21T13:00:00.123456Z",
    "updated_at": "2026-11-21T13:00:00.123456Z",
}
EXAMPLE_ENDED = {
    **EXAMPLE_CALL,
    "started_at": "2026-11-27T17:00:04.010000Z",
    "ended_at": "2026-11-27T18:02:11.500000Z",
    "recording_url": "https://api.example.com/v1/media/me_7s1k2d?expires=1795888931&sig=4f1c…",
    "recording_ready_at": "2026-11-27T18:02:20.000000Z",
    "status": "ended",
}
EX_SCHEDULED = OpenApiExample("scheduled", value=EXAMPLE_CALL, response_only=True)
EX_LIVE = OpenApiExample(
    "live",
    value={**EXAMPLE_CALL, "status": "live", "started_at": "2026-11-27T17:00:04.010000Z"},
    response_only=True,
)
EX_ENDED = OpenApiExample("ended", value=EXAMPLE_ENDED, response_only=True)


def _body(live: LiveCall) -> dict[str, Any]:
    live = live_services.live_call_sync_recording(live)
    return dict(LiveCallSerializer(live).data)


class LiveCallsView(APIView):
    permission_classes = [IsTenantPrincipal]

    @extend_schema(
        tags=[TAG],
        operation_id="live_calls_create",
        summary="Create a LiveKit-backed Loop Live call",
        description="Document 003. Schedules a live call: its room and LiveKit room are created now "
        "(`stream_call_id` is the LiveKit room name, `stream_call_type` is `livestream`); the host goes live "
        "with `POST /v1/live/calls/{id}/start` or by connecting after `scheduled_at` (the scheduled-start beat). "
        "With a user bearer token, `host_user_id` must be the caller; the tenant's X-API-Key may schedule for "
        "any user. Honours `Idempotency-Key`.",
        request=LiveCallCreateSerializer,
        responses={
            201: LiveCallSerializer,
            400: P_INVALID,
            403: P_FORBIDDEN,
            502: P_502,
            503: P_503,
            **PROBLEM_RESPONSES,
        },
        examples=[
            OpenApiExample(
                "schedule",
                value={
                    "host_user_id": "alice",
                    "title": "Friday AMA",
                    "scheduled_at": "2026-11-27T17:00:00Z",
                    "metadata": {"topic": "roadmap"},
                },
                request_only=True,
            ),
            EX_SCHEDULED,
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        serializer = LiveCallCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        host: TenantUser
        if principal.user is None:
            host = user_get_or_create(tenant=principal.tenant, external_id=data["host_user_id"])
        elif data["host_user_id"] != principal.user.external_id:
            raise ProblemError(
                403,
                "forbidden",
                "host_user_id must be the caller's own user id (the tenant's X-API-Key may schedule for others).",
            )
        else:
            host = principal.user
        live = live_services.live_call_create(
            tenant=principal.tenant,
            host=host,
            title=data["title"],
            scheduled_at=data.get("scheduled_at"),
            metadata=data.get("metadata"),
        )
        return Response(_body(live), status=201)

    @extend_schema(
        tags=[TAG],
        operation_id="live_calls_list",
        summary="List live calls",
        description="Newest first, cursor-paginated. The tenant's X-API-Key sees every live call of the tenant; "
        "a user sees the calls they host (an audience member reads a call by id).",
        parameters=[LiveCallListQuerySerializer],
        responses={
            200: LiveCallPage,
            400: problem("Bad filter or cursor", "validation_failed"),
            **PROBLEM_RESPONSES,
        },
        examples=[OpenApiExample("page", value={"data": [EXAMPLE_CALL], "next_cursor": None}, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        query = LiveCallListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = live_selectors.live_calls_visible(principal=principal, status=query.validated_data.get("status"))
        page = paginate(
            rows,
            cursor=query.validated_data.get("cursor"),
            limit=query.validated_data["limit"],
            order=("-created_at", "-stream_call_id"),
        )
        return Response({"data": [_body(live) for live in page.items], "next_cursor": page.next_cursor})


def _found(request: Request, live_call_id: str) -> LiveCall:
    live = live_selectors.live_call_get(principal=principal_of(request), live_call_id=live_call_id)
    if live is None:
        raise live_services.live_call_not_found()
    return live


def _acting_user(request: Request) -> TenantUser | None:
    """The user acting, or None for the tenant's server key (which may act for the host)."""
    return principal_of(request).user


class LiveCallDetailView(APIView):
    permission_classes = [IsTenantPrincipal]

    @extend_schema(
        tags=[TAG],
        operation_id="live_call_retrieve",
        summary="Read a live call",
        description="Any user of the tenant (the audience needs it to join) and the tenant's X-API-Key. "
        "`recording_url` is signed afresh on every read (it expires after MEDIA_URL_TTL).",
        parameters=[LIVE_CALL_ID],
        responses={200: LiveCallSerializer, 404: P_NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[EX_SCHEDULED, EX_LIVE, EX_ENDED],
    )
    def get(self, request: Request, live_call_id: str) -> Response:
        return Response(_body(_found(request, live_call_id)))

    @extend_schema(
        tags=[TAG],
        operation_id="live_call_delete",
        summary="Cancel a scheduled live call",
        description="The host or the tenant's X-API-Key, only while it is `scheduled` (end a live one instead). "
        "Its room is closed.",
        parameters=[LIVE_CALL_ID],
        responses={204: None, 403: P_FORBIDDEN, 404: P_NOT_FOUND, 409: P_CONFLICT, **PROBLEM_RESPONSES},
    )
    def delete(self, request: Request, live_call_id: str) -> Response:
        live = _found(request, live_call_id)
        live_services.live_call_delete(tenant=live.tenant, live_call_id=live.pk, by=_acting_user(request))
        return Response(status=204)


class LiveCallStartView(APIView):
    permission_classes = [IsTenantUser]

    @extend_schema(
        tags=[TAG],
        operation_id="live_call_start",
        summary="Go live",
        description="The host only (user bearer token). (Re)creates the LiveKit room, opens the call and starts "
        "its recording (unless the tenant disabled recordings); status `live`. A LiveKit failure leaves the call "
        "`errored` (with `error_reason`) and answers 502.",
        request=None,
        parameters=[LIVE_CALL_ID],
        responses={
            200: LiveCallSerializer,
            403: P_FORBIDDEN,
            404: P_NOT_FOUND,
            409: P_CONFLICT,
            502: P_502,
            503: P_503,
            **PROBLEM_RESPONSES,
        },
        examples=[EX_LIVE],
    )
    def post(self, request: Request, live_call_id: str) -> Response:
        live = _found(request, live_call_id)
        live = live_services.live_call_start(tenant=live.tenant, live_call_id=live.pk, by=_acting_user(request))
        return Response(_body(live))


class LiveCallEndView(APIView):
    permission_classes = [IsTenantPrincipal]

    @extend_schema(
        tags=[TAG],
        operation_id="live_call_end",
        summary="End the live call",
        description="The host or the tenant's X-API-Key. Stops the recording's egress and closes the LiveKit room; "
        "status `ended`. `recording_url` appears once the recording is ready.",
        request=None,
        parameters=[LIVE_CALL_ID],
        responses={200: LiveCallSerializer, 403: P_FORBIDDEN, 404: P_NOT_FOUND, 409: P_CONFLICT, **PROBLEM_RESPONSES},
        examples=[EX_ENDED],
    )
    def post(self, request: Request, live_call_id: str) -> Response:
        live = _found(request, live_call_id)
        live = live_services.live_call_end(tenant=live.tenant, live_call_id=live.pk, by=_acting_user(request))
        return Response(_body(live))


class LiveCallTokenView(APIView):
    permission_classes = [IsTenantUser]

    @extend_schema(
        tags=[TAG],
        operation_id="live_call_token",
        summary="A LiveKit token for the live call",
        description="User bearer token. The host gets a publisher token (`host` role); any other user of the "
        "tenant a viewer token (subscribe only: LiveKit refuses their publish). Available while the call is "
        "`scheduled` or `live`.",
        request=None,
        parameters=[LIVE_CALL_ID],
        responses={
            200: LiveCallTokenSerializer,
            404: P_NOT_FOUND,
            409: P_CONFLICT,
            502: P_502,
            503: P_503,
            **PROBLEM_RESPONSES,
        },
        examples=[
            OpenApiExample(
                "viewer",
                value={
                    "token": "eyJhbGciOiJIUzI1NiJ9…",
                    "url": "wss://livekit.example.com",
                    "expiresAt": "2026-11-27T18:00:00Z",
                    "role": "viewer",
                    "identity": "bob",
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, live_call_id: str) -> Response:
        live = _found(request, live_call_id)
        user = _acting_user(request)
        assert user is not None  # IsTenantUser
        issued = live_services.live_call_token(tenant=live.tenant, live_call_id=live.pk, user=user)
        return Response(LiveCallTokenSerializer(issued).data)
