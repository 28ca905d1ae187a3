"""Live transcription endpoints (document 001 "Transcription (Live)", X-API-Key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms.models import Room
from rooms.services import iso_ms
from scaiwave.api.errors import ProblemError
from scaiwave.api.permissions import IsTenantServer, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from transcription.exports import EXPORT_CONTENT_TYPES, transcript_as_text
from transcription.live import selectors, services
from transcription.live.serializers import (
    LiveSpeakersRequestSerializer,
    LiveStartedSerializer,
    LiveStartRequestSerializer,
    LiveStoppedSerializer,
    LiveTranscriptSerializer,
)
from transcription.views import _ExportNegotiation

TAG = "Transcription (live)"

P_INVALID = problem("The request is not valid", "validation_failed")
P_ROOM = problem("No such open room (also another tenant's)", "room_not_found")
P_SESSION = problem("The room has no live transcription (or no active one, for speakers)", "transcription_not_found")
P_UNAVAILABLE = problem(
    "Live transcription is disabled (TRANSCRIPTION_LIVE_ENABLED) or no speech model is installed",
    "transcription_live_unavailable",
)
ROOM_PARAM = OpenApiParameter("room_id", str, OpenApiParameter.PATH, description="The room's id (its name)")
EXAMPLE_ID = "tr_8w1k3m0q2x9c7v5b4n6z"


class LiveBaseView(APIView):
    permission_classes = [IsTenantServer]
    problem_codes = {"404": "room_not_found"}


def _invalid(errors: Any) -> ProblemError:
    return ProblemError(400, "validation_failed", "The request is not valid.", errors=errors)


class LiveStartView(LiveBaseView):
    @extend_schema(
        tags=[TAG],
        operation_id="room_transcription_start",
        summary="Start live transcription of a room",
        description="Every audio track of the room (and every one published later) is streamed from LiveKit to "
        "this server and transcribed on it; segments arrive as `transcription.segment` events on the room's "
        "WebSocket group (`/v1/events`, `subscribe` to the room). Idempotent: while a session is active, starting "
        "again returns it unchanged.",
        request=LiveStartRequestSerializer,
        parameters=[ROOM_PARAM],
        examples=[
            OpenApiExample(
                "with options",
                value={
                    "language": "en-US",
                    "participants": {"TR_AMkq3": "Alice"},
                    "options": {"partialResults": True, "punctuation": True, "profanityFilter": True},
                },
                request_only=True,
            ),
            OpenApiExample(
                "active",
                value={
                    "transcriptionId": EXAMPLE_ID,
                    "roomId": "my-room",
                    "status": "active",
                    "language": "en-US",
                    "startedAt": "2026-11-21T12:00:00.000Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
        responses={
            201: LiveStartedSerializer,
            400: problem("The request is not valid or the language is unknown", "validation_failed"),
            403: problem("Transcription is disabled for this tenant", "transcription_disabled"),
            404: P_ROOM,
            502: problem("LiveKit could not be reached", "livekit_unreachable"),
            503: P_UNAVAILABLE,
            **PROBLEM_RESPONSES,
        },
    )
    def post(self, request: Request, room_id: str) -> Response:
        serializer = LiveStartRequestSerializer(data=request.data)
        if not serializer.is_valid():
            raise _invalid(serializer.errors)
        session, _created = services.live_start(
            tenant=principal_of(request).tenant,
            room_id=room_id,
            language=serializer.validated_data["language"],
            participants=serializer.validated_data["participants"],
            options=dict(serializer.validated_data["options"]),
        )
        return Response(LiveStartedSerializer(session).data, status=201)


class LiveStopView(LiveBaseView):
    problem_codes = {"404": "transcription_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="room_transcription_stop",
        summary="Stop live transcription of a room",
        description="Stops the session and its LiveKit egresses. `segmentCount` is final: speech still being "
        "transcribed when the session stops is not stored. Stopping a stopped session returns it again.",
        request=None,
        parameters=[ROOM_PARAM],
        examples=[
            OpenApiExample(
                "stopped",
                value={
                    "transcriptionId": EXAMPLE_ID,
                    "status": "stopped",
                    "stoppedAt": "2026-11-21T12:30:00.000Z",
                    "segmentCount": 42,
                },
                response_only=True,
            )
        ],
        responses={200: LiveStoppedSerializer, 404: P_SESSION, **PROBLEM_RESPONSES},
    )
    def post(self, request: Request, room_id: str) -> Response:
        session = services.live_stop(tenant=principal_of(request).tenant, room_id=room_id)
        return Response(LiveStoppedSerializer(session).data)


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a '+' in a query string arrives as a space
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise _invalid({"since": ["An ISO 8601 timestamp with a time zone, e.g. 2026-11-21T12:00:00.000Z."]})
    try:
        # PostgreSQL takes offsets up to 15:59 only; Python up to 23:59. UTC is what the query needs anyway.
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the year 1 in UTC
        raise _invalid({"since": ["The timestamp is out of range."]}) from None


class LiveTranscriptView(LiveBaseView):
    content_negotiation_class = _ExportNegotiation
    problem_codes = {"404": "transcription_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="room_transcription_get",
        summary="The room's live transcript (segments so far)",
        description="The active session, else the most recent one. `since` returns only segments stored after "
        "that time (poll with the last `createdAt`). `format=text` gives `[HH:MM:SS] Speaker: text` lines. "
        "`health` is `degraded` when the recognizer could not keep up and dropped speech, or a track could not "
        "be streamed; `healthDetail` says what and when.",
        parameters=[
            ROOM_PARAM,
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Only segments stored after this time"),
            OpenApiParameter("format", str, enum=["json", "text"], description="Default json"),
        ],
        examples=[
            OpenApiExample(
                "active",
                value={
                    "transcriptionId": EXAMPLE_ID,
                    "roomId": "my-room",
                    "status": "active",
                    "language": "en-US",
                    "health": "ok",
                    "healthDetail": None,
                    "participants": {"TR_AMkq3": "Alice"},
                    "options": {"partialResults": False, "punctuation": True, "profanityFilter": False},
                    "startedAt": "2026-11-21T12:00:00.000Z",
                    "stoppedAt": None,
                    "segments": [
                        {
                            "index": 0,
                            "start": 3.2,
                            "end": 5.9,
                            "text": "Good morning, everyone.",
                            "speaker": "Alice",
                            "speakerLabel": "alice",
                            "trackSid": "TR_AMkq3",
                            "confidence": 0.83,
                            "createdAt": "2026-11-21T12:00:07.114Z",
                        }
                    ],
                },
                response_only=True,
            )
        ],
        responses={
            (200, "application/json"): LiveTranscriptSerializer,
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="format=text"),
            400: P_INVALID,
            404: P_SESSION,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, room_id: str) -> Response | HttpResponse:
        export = request.query_params.get("format", "json")
        if export not in ("json", "text"):
            raise _invalid({"format": ["json or text."]})
        since = _since(request.query_params.get("since"))
        tenant = principal_of(request).tenant
        room = Room.objects.filter(tenant=tenant, name=room_id, closed_at__isnull=True).first()
        session = selectors.live_session_current(room=room) if room is not None else None
        if session is None:
            raise ProblemError(404, "transcription_not_found", f"Room {room_id!r} has no live transcription.")
        segments = list(selectors.live_segments(transcription=session, since=since))
        if export == "text":
            return HttpResponse(transcript_as_text(segments), content_type=EXPORT_CONTENT_TYPES["text"])
        body = {
            "transcriptionId": session.pk,
            "roomId": room_id,
            "status": session.status,
            "language": session.language,
            "health": session.health or "ok",
            "healthDetail": session.health_detail or None,
            "participants": session.speaker_map,
            "options": session.options,
            "startedAt": iso_ms(session.started_at or session.created_at),
            "stoppedAt": iso_ms(session.stopped_at) if session.stopped_at else None,
            "segments": [services.segment_as_json(s) for s in segments],
        }
        return Response(body)


class LiveSpeakersView(LiveBaseView):
    problem_codes = {"404": "transcription_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="room_transcription_speakers",
        summary="Update the speaker identity map mid-session",
        description="Names are merged into the map; segments stored from now on use them.",
        request=LiveSpeakersRequestSerializer,
        parameters=[ROOM_PARAM],
        examples=[OpenApiExample("rename", value={"participants": {"TR_AMkq3": "Alice"}}, request_only=True)],
        responses={204: None, 400: P_INVALID, 404: P_SESSION, **PROBLEM_RESPONSES},
    )
    def patch(self, request: Request, room_id: str) -> Response:
        serializer = LiveSpeakersRequestSerializer(data=request.data)
        if not serializer.is_valid():
            raise _invalid(serializer.errors)
        services.live_speakers_update(
            tenant=principal_of(request).tenant,
            room_id=room_id,
            participants=serializer.validated_data["participants"],
        )
        return Response(status=204)
