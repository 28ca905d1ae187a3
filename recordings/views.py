"""Recording endpoints on three surfaces, one core:

- document 000 (user bearer, `{"data": ...}`, SW_CALL_* codes): /v1/calls/{call_id}/recording/start|stop,
  /v1/calls/{call_id}/recordings;
- document 001 (X-API-Key, bare objects): /v1/rooms/{roomId}/recording/start|stop, /v1/rooms/{roomId}/recording;
- ours (X-API-Key or a member of the room): /v1/recordings/{id}, /v1/recordings/{id}/media,
  DELETE /v1/recordings/{id}; and the signed local download /v1/media/{id} (HTTP Range).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import errors as call_errors
from calls.models import Call
from calls.selectors import call_get
from recordings import selectors, services, storage
from recordings.models import Recording
from recordings.serializers import (
    CallMediaReferenceSerializer,
    RecordingSerializer,
    RecordingStartRequestSerializer,
    RoomRecordingStartSerializer,
    RoomRecordingStatusSerializer,
    RoomRecordingStopSerializer,
    iso,
    room_recording_start_data,
)
from rooms import livekit_gateway as gateway
from rooms.models import Room, RoomMember
from rooms.selectors import member_get, room_get_open
from scaiwave.api.errors import PROBLEM_CONTENT_TYPE, ProblemError, problem_body
from scaiwave.api.idempotency import idempotent
from scaiwave.api.parsers import JSONWhateverTheType
from scaiwave.api.permissions import IsTenantPrincipal, IsTenantServer, IsTenantUser, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.audit import actor_of

CALLS_TAG = "Calls (ScaiWave)"
ROOMS_TAG = "Recording (rtcstack)"
OURS_TAG = "Recordings"
RECORDING_DISABLED = "SW_CALL_RECORDING_DISABLED"
RECORDING_NOT_FOUND = "SW_CALL_RECORDING_NOT_FOUND"

# The pattern is the id's shape (scaiwave.ids); it also tells callers that /v1/calls/initiate and /v1/calls/webhook
# are other resources, not calls named "initiate" or "webhook".
CALL_ID = OpenApiParameter(
    "call_id", {"type": "string", "pattern": "^call-[0-9a-z]+$"}, OpenApiParameter.PATH, description="call-…"
)
ROOM_ID = OpenApiParameter("room_id", str, OpenApiParameter.PATH, description="The room's id (roomId)")
RECORDING_ID = OpenApiParameter(
    "recording_id", str, OpenApiParameter.PATH, description="rec_…, or the recording's egress id (EG_…)"
)

EXAMPLE_MEDIA = {
    "id": "me_0c2m1x7q8w4e5r6t3k9f",
    "contentType": "video/mp4",
    "size": 48213377,
    "durationSeconds": 600.04,
    "url": "https://minio.example.com/scaiwave/recordings/call-…/20261121T120003123Z.mp4?X-Amz-…",
    "urlExpiresAt": "2026-11-21T13:10:09Z",
}
EXAMPLE_RECORDING: dict[str, object] = {
    "id": "rec_4k2m9x0q7w3e5r1t8y6u",
    "status": "ready",
    "failureReason": None,
    "roomId": "standup",
    "callId": "call-3k9f0c2m1x7q8w4e5r6t",
    "egressId": "EG_a8Kq2vN5xP3m",
    "audio": True,
    "video": True,
    "transcript": False,
    "storageKey": "recordings/call-3k9f0c2m1x7q8w4e5r6t/20261121T120003123Z.mp4",
    "requestedBy": "5e4d",
    "createdAt": "2026-11-21T12:00:03Z",
    "startedAt": "2026-11-21T12:00:04Z",
    "stoppedAt": "2026-11-21T12:10:04Z",
    "finishedAt": "2026-11-21T12:10:09Z",
    "egresses": [
        {
            "egressId": "EG_a8Kq2vN5xP3m",
            "kind": "room_composite",
            "status": "complete",
            "error": "",
            "trackSid": "",
            "participantIdentity": "",
        }
    ],
    "media": [{**EXAMPLE_MEDIA, "kind": "room_composite", "participantIdentity": ""}],
}
EXAMPLE_FAILED = {
    **EXAMPLE_RECORDING,
    "status": "failed",
    "failureReason": "failed to upload to s3: AccessDenied",
    "finishedAt": "2026-11-21T12:10:05Z",
    "media": [],
}

RecordingEnvelope = inline_serializer("CallRecordingEnvelope", {"data": RecordingSerializer()})
CallMediaList = inline_serializer("CallRecordingList", {"data": CallMediaReferenceSerializer(many=True)})

P_CALL_NOT_FOUND = problem("No such call (also another tenant's call)", call_errors.NOT_FOUND)
P_CALL_ENDED = problem("The call is no longer active", call_errors.ENDED)
P_CALL_FORBIDDEN = problem("Not in the call's room, or power below 50", call_errors.FORBIDDEN)
P_CALL_DISABLED = problem("The tenant has recordings disabled", RECORDING_DISABLED)
P_CALL_LIVEKIT = problem("LiveKit could not be reached", call_errors.LIVEKIT_UNREACHABLE)
P_CALL_INVALID = problem("The request is not valid", call_errors.INVALID_REQUEST)
P_ROOM_NOT_FOUND = problem("No such room", "room_not_found")
P_LIVEKIT = problem("LiveKit could not be reached", "livekit_unreachable")
P_DISABLED = problem("The tenant has recordings disabled", "recordings_disabled")
P_NOT_LIVE = problem("Nobody is in the room on LiveKit yet", "room_not_live")
P_RECORDING_NOT_FOUND = problem("No such recording", "recording_not_found")


# --- Document 000: call recordings ---------------------------------------------------------------


def _call_problem(exc: ProblemError, call: Call) -> ProblemError:
    """The core's problems in the calls surface's words."""
    if isinstance(exc, services.RecordingsDisabled):
        return ProblemError(403, RECORDING_DISABLED, exc.detail)
    if isinstance(exc, services.RoomNotLive | services.CallNotLive):
        return call_errors.call_ended(exc.extra.get("call_status", call.status))
    if isinstance(exc, gateway.LiveKitError):
        return call_errors.livekit_unreachable(exc.detail)
    return exc


class CallRecordingBase(APIView):
    permission_classes = [IsTenantUser]
    problem_codes = {"400": call_errors.INVALID_REQUEST, "403": call_errors.FORBIDDEN, "404": call_errors.NOT_FOUND}
    content_negotiation_class = JSONWhateverTheType  # document 000's curl examples label JSON as a form

    def authorized_call(self, request: Request, call_id: str, *, admin: bool) -> Call:
        """The tenant's call, if the caller is a member of its room (with power >= 50 for `admin`)."""
        principal = principal_of(request)
        call = call_get(tenant=principal.tenant, call_id=call_id)
        if call is None:
            raise call_errors.call_not_found()
        assert principal.user is not None  # IsTenantUser
        member = member_get(room=call.room, user=principal.user)
        if member is None:
            raise call_errors.forbidden("You are not a member of this call's room.")
        if admin and member.power_level < RoomMember.ADMIN_POWER:
            raise call_errors.forbidden("Recording needs power 50 or more in the room.")
        return call


class CallRecordingStartView(CallRecordingBase):
    @extend_schema(
        tags=[CALLS_TAG],
        summary="Start recording a call (admin)",
        description="LiveKit egress writes `recordings/<call_id>/<timestamp>.mp4` (`.ogg` when `video` is false) "
        "to the object store; once it finishes the file is registered as a media entry and listed by "
        "`GET /v1/calls/{call_id}/recordings`. With `transcript: true` a transcription job follows. "
        "Needs membership of the call's room with power >= 50. Idempotent: while a recording is running, "
        "that recording is returned with 200. Honours `Idempotency-Key`.",
        parameters=[CALL_ID],
        request=RecordingStartRequestSerializer,
        examples=[
            OpenApiExample("everything", value={"audio": True, "video": True, "transcript": True}, request_only=True),
            OpenApiExample(
                "started",
                value={"data": {**EXAMPLE_RECORDING, "status": "starting", "media": [], "stoppedAt": None}},
                response_only=True,
            ),
        ],
        responses={
            201: RecordingEnvelope,
            200: OpenApiResponse(RecordingEnvelope, description="Already recording: the running recording"),
            400: P_CALL_INVALID,
            403: OpenApiResponse(description="SW_CALL_FORBIDDEN or SW_CALL_RECORDING_DISABLED"),
            404: P_CALL_NOT_FOUND,
            409: P_CALL_ENDED,
            502: P_CALL_LIVEKIT,
            **{k: v for k, v in PROBLEM_RESPONSES.items() if k != 403},
        },
    )
    @idempotent
    def post(self, request: Request, call_id: str) -> Response:
        call = self.authorized_call(request, call_id, admin=True)
        if not call.is_live:
            raise call_errors.call_ended(call.status)
        body = RecordingStartRequestSerializer(data=request.data or {})
        if not body.is_valid():
            raise ProblemError(400, call_errors.INVALID_REQUEST, "The request is not valid.", errors=body.errors)
        try:
            recording, created = services.recording_start(
                room=call.room, call=call, requested_by=principal_of(request).user, **body.validated_data
            )
        except ProblemError as exc:
            raise _call_problem(exc, call) from None
        recording = selectors.recording_get(tenant=call.tenant, reference=recording.pk) or recording
        return Response({"data": RecordingSerializer(recording).data}, status=201 if created else 200)


class CallRecordingStopView(CallRecordingBase):
    @extend_schema(
        tags=[CALLS_TAG],
        summary="Stop recording a call (admin)",
        description="Stops the running recording; the file is registered when LiveKit finishes it (status "
        "`stopping` -> `processing` -> `ready`). Stopping twice is safe: the latest recording is returned.",
        parameters=[CALL_ID],
        request=None,
        examples=[
            OpenApiExample(
                "stopping", value={"data": {**EXAMPLE_RECORDING, "status": "stopping", "media": []}}, response_only=True
            )
        ],
        responses={
            200: RecordingEnvelope,
            403: P_CALL_FORBIDDEN,
            404: OpenApiResponse(description="SW_CALL_NOT_FOUND, or SW_CALL_RECORDING_NOT_FOUND (never recorded)"),
            502: P_CALL_LIVEKIT,
            **{k: v for k, v in PROBLEM_RESPONSES.items() if k != 403},
        },
    )
    def post(self, request: Request, call_id: str) -> Response:
        call = self.authorized_call(request, call_id, admin=True)
        recording = selectors.recording_active_for_call(call=call) or selectors.recording_latest_for_call(call=call)
        if recording is None:
            raise ProblemError(404, RECORDING_NOT_FOUND, "This call has never been recorded.")
        try:
            services.recording_stop(recording=recording)
        except ProblemError as exc:
            raise _call_problem(exc, call) from None
        fresh = selectors.recording_get(tenant=call.tenant, reference=recording.pk)
        return Response({"data": RecordingSerializer(fresh).data})


class CallRecordingsView(CallRecordingBase):
    @extend_schema(
        tags=[CALLS_TAG],
        summary="A call's finished recordings as media references",
        description="Each finished recording's file with a download URL valid for MEDIA_URL_TTL seconds "
        "(a presigned S3 URL, or a signed ScaiWave URL that supports Range requests). Any member of the room.",
        parameters=[CALL_ID],
        responses={200: CallMediaList, 403: P_CALL_FORBIDDEN, 404: P_CALL_NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[
            OpenApiExample(
                "one recording",
                value={"data": [{**EXAMPLE_MEDIA, "recordingId": EXAMPLE_RECORDING["id"]}]},
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, call_id: str) -> Response:
        call = self.authorized_call(request, call_id, admin=False)
        return Response({"data": selectors.media_references_for_call(call)})


# --- Document 001: room recording ----------------------------------------------------------------


class RoomRecordingBase(APIView):
    permission_classes = [IsTenantServer]

    def open_room(self, request: Request, room_id: str) -> Room:
        room = room_get_open(tenant=principal_of(request).tenant, name=room_id)
        if room is None:
            raise ProblemError(404, "room_not_found", "Room not found")
        return room


class RoomRecordingStartView(RoomRecordingBase):
    @extend_schema(
        tags=[ROOMS_TAG],
        summary="Start a room composite recording",
        description='Idempotent: returns 200 with `status: "already_recording"` if a recording is active. '
        "The MP4 goes to `recordings/<roomId>/<timestamp>.mp4` in the bucket. Honours `Idempotency-Key`.",
        parameters=[ROOM_ID],
        request=None,
        responses={
            201: RoomRecordingStartSerializer,
            200: OpenApiResponse(RoomRecordingStartSerializer, description="already_recording"),
            403: P_DISABLED,
            404: P_ROOM_NOT_FOUND,
            409: P_NOT_LIVE,
            502: P_LIVEKIT,
            **{k: v for k, v in PROBLEM_RESPONSES.items() if k != 403},
        },
        examples=[
            OpenApiExample(
                "started",
                value={
                    "egressId": "EG_a8Kq2vN5xP3m",
                    "roomId": "my-room",
                    "status": "recording",
                    "startedAt": "2025-01-01T12:00:00.000Z",
                    "recordingId": "rec_4k2m9x0q7w3e5r1t8y6u",
                },
                response_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request, room_id: str) -> Response:
        room = self.open_room(request, room_id)
        # Per-speaker audio beside the composite: POST /v1/recordings/{id}/transcribe names voices by track sid.
        recording, created = services.recording_start(room=room, requested_by=None, speaker_tracks=True)
        fresh = selectors.recording_get(tenant=room.tenant, reference=recording.pk) or recording
        return Response(room_recording_start_data(fresh, created=created), status=201 if created else 200)


class RoomRecordingStopView(RoomRecordingBase):
    @extend_schema(
        tags=[ROOMS_TAG],
        summary="Stop the active recording",
        description="Returns 404 if no recording is running. The file is registered once LiveKit finishes it.",
        parameters=[ROOM_ID],
        request=None,
        responses={
            200: RoomRecordingStopSerializer,
            404: OpenApiResponse(description="room_not_found or recording_not_running"),
            502: P_LIVEKIT,
            **PROBLEM_RESPONSES,
        },
        examples=[
            OpenApiExample(
                "stopped",
                value={"status": "stopped", "stoppedAt": "2025-01-01T12:30:00.000Z", "recordingId": "rec_4k2m…"},
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = self.open_room(request, room_id)
        recording = selectors.recording_active_for_room(room=room)
        if recording is None:
            raise ProblemError(404, "recording_not_running", "No recording is running in this room.")
        stopped = services.recording_stop(recording=recording)
        return Response({"status": "stopped", "stoppedAt": iso(stopped.stopped_at), "recordingId": stopped.pk})


class RoomRecordingStatusView(RoomRecordingBase):
    @extend_schema(
        tags=[ROOMS_TAG],
        summary="Current recording status",
        parameters=[ROOM_ID],
        responses={200: RoomRecordingStatusSerializer, 404: P_ROOM_NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[
            OpenApiExample(
                "recording",
                value={
                    "isRecording": True,
                    "egressId": "EG_a8Kq2vN5xP3m",
                    "startedAt": "2025-01-01T12:00:00.000Z",
                    "recordingId": "rec_4k2m9x0q7w3e5r1t8y6u",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.open_room(request, room_id)
        recording = selectors.recording_active_for_room(room=room)
        if recording is None:
            return Response({"isRecording": False, "egressId": None, "startedAt": None, "recordingId": None})
        data = room_recording_start_data(recording, created=True)
        return Response(
            {
                "isRecording": True,
                "egressId": data["egressId"],
                "startedAt": data["startedAt"],
                "recordingId": recording.pk,
            }
        )


# --- Ours: one recording, its media, delete -------------------------------------------------------


class RecordingBase(APIView):
    permission_classes = [IsTenantPrincipal]

    def visible_recording(self, request: Request, reference: str, *, admin: bool = False) -> Recording:
        """The tenant's recording, for its server or a member of its room (power >= 50 for `admin`).

        A non-member gets 404, as for a recording that does not exist.
        """
        principal = principal_of(request)
        recording = selectors.recording_get(tenant=principal.tenant, reference=reference)
        if recording is None:
            raise ProblemError(404, "recording_not_found", "No such recording.")
        if principal.user is not None:
            member = member_get(room=recording.room, user=principal.user)
            if member is None:
                raise ProblemError(404, "recording_not_found", "No such recording.")
            if admin and member.power_level < RoomMember.ADMIN_POWER:
                raise ProblemError(403, "forbidden", "Deleting a recording needs power 50 or more in the room.")
        return recording


class RecordingDetailView(RecordingBase):
    @extend_schema(
        tags=[OURS_TAG],
        summary="A recording: state, failure reason, files",
        description="For the tenant's server (X-API-Key) or a member of the recording's room. Failed, aborted "
        "and limit-reached recordings carry LiveKit's error text in `failureReason`.",
        parameters=[RECORDING_ID],
        responses={200: RecordingSerializer, 404: P_RECORDING_NOT_FOUND, **PROBLEM_RESPONSES},
        examples=[
            OpenApiExample("ready", value=EXAMPLE_RECORDING, response_only=True),
            OpenApiExample("failed", value=EXAMPLE_FAILED, response_only=True),
        ],
    )
    def get(self, request: Request, recording_id: str) -> Response:
        return Response(RecordingSerializer(self.visible_recording(request, recording_id)).data)

    @extend_schema(
        tags=[OURS_TAG],
        summary="Delete a finished recording and its files",
        description="Stored objects are deleted first, then the rows. A running recording must be stopped first "
        "(409). Users need power >= 50 in the room.",
        parameters=[RECORDING_ID],
        responses={
            204: None,
            404: P_RECORDING_NOT_FOUND,
            409: problem("The recording is still in progress", "recording_in_progress"),
            **PROBLEM_RESPONSES,
        },
    )
    def delete(self, request: Request, recording_id: str) -> Response:
        services.recording_delete(
            recording=self.visible_recording(request, recording_id, admin=True), actor=actor_of(principal_of(request))
        )
        return Response(status=204)


class RecordingMediaView(RecordingBase):
    @extend_schema(
        tags=[OURS_TAG],
        summary="Download a recording (redirect)",
        description="302 to a time-limited download URL of the recording's main file.",
        parameters=[RECORDING_ID],
        responses={
            302: OpenApiResponse(description="Location: the download URL"),
            404: P_RECORDING_NOT_FOUND,
            409: problem("The recording has no file yet", "recording_not_ready"),
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, recording_id: str) -> HttpResponse:
        recording = self.visible_recording(request, recording_id)
        entry = selectors.composite_media(recording)
        if entry is None or entry.missing_since is not None:
            raise ProblemError(409, "recording_not_ready", f"The recording has no file (it is {recording.status}).")
        return HttpResponseRedirect(selectors.media_reference(entry)["url"])


# --- Signed local downloads with Range ----------------------------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(problem_body(status, code, detail)), status=status)
    response["Content-Type"] = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end inclusive) for a single `bytes=` range; None to serve everything; False if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # another unit, several ranges or garbage: RFC 9110 lets us ignore it
    first, last = match.groups()
    if not first and not last:
        return False
    if not first:
        suffix = _position(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = _position(first)
    end = min(_position(last), size - 1) if last else size - 1
    if start >= size or (last and _position(last) < start):
        return False
    return start, end


def _position(digits: str) -> int:
    # Past any file we hold, and int() of more than 4,300 digits raises (a 500 before).
    return int(digits) if len(digits) <= 18 else 10**18


class MediaDownloadView(APIView):
    """The signed URL is the credential: no other authentication."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        tags=[OURS_TAG],
        summary="Download a stored file (signed URL, local storage)",
        description="Served when media is on local storage; the URL comes from a media reference and expires. "
        "Supports a single `Range: bytes=` range (206 with Content-Range; 416 when unsatisfiable).",
        parameters=[
            OpenApiParameter("media_id", str, OpenApiParameter.PATH, description="me_…"),
            OpenApiParameter("expires", int, OpenApiParameter.QUERY, required=True, description="unix seconds"),
            OpenApiParameter("sig", str, OpenApiParameter.QUERY, required=True, description="HMAC-SHA256"),
            OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False, description="bytes=0-1023"),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            403: problem("The link is invalid or has expired", "media_link_invalid"),
            404: problem("No such file", "media_not_found"),
            416: problem("The range cannot be satisfied", "range_not_satisfiable"),
        },
    )
    def get(self, request: Request, media_id: str) -> HttpResponseBase:
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            expires = 0
        signature = request.query_params.get("sig", "")
        if expires < time.time() or not storage.media_signature_valid(media_id, expires, signature):
            return _problem(403, "media_link_invalid", "The download link is invalid or has expired.")
        entry = selectors.media_entry_get(entry_id=media_id)
        size = storage.object_size(entry.key) if entry is not None else None
        if entry is None or size is None:
            return _problem(404, "media_not_found", "No such file.")
        headers = {"Accept-Ranges": "bytes", "Content-Type": entry.content_type, "Cache-Control": "private"}
        wanted = parse_range(request.headers.get("Range", ""), size) if request.headers.get("Range") else None
        if wanted is False:
            return _problem(
                416, "range_not_satisfiable", "The range cannot be satisfied.", {"Content-Range": f"bytes */{size}"}
            )
        if isinstance(wanted, tuple):
            start, end = wanted
            response = StreamingHttpResponse(
                storage.object_iter(entry.key, start=start, length=end - start + 1), status=206
            )
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            response["Content-Length"] = str(end - start + 1)
        else:
            response = StreamingHttpResponse(storage.object_iter(entry.key), status=200)
            response["Content-Length"] = str(size)
        for name, value in headers.items():
            response[name] = value
        return response
