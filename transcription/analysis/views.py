"""The uploaded-call surface (document 002, Scryon): /api/calls..., /api/action-items. User bearer tokens only;
every read and write is scoped to the caller's own calls (another user's call is 404 call_not_found)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import CharField
from django.db.models.functions import Cast
from django.http import HttpResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.errors import ProblemError
from scaiwave.api.pagination import paginate, parse_limit
from scaiwave.api.parsers import JSONParser, json_loads_bounded
from scaiwave.api.permissions import IsTenantUser, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.audit import actor_of
from scaiwave.models import TenantUser
from transcription.analysis import selectors, services
from transcription.analysis.serializers import (
    ActionItemPageSchema,
    ActionItemSchema,
    ActionItemUpdateSerializer,
    AnalysisSchema,
    AnalyzeRequestSerializer,
    BulkDeleteResultSchema,
    BulkDeleteSerializer,
    CallAcceptedSchema,
    CallDetailSchema,
    CallMetadataSerializer,
    CallPageSchema,
    CallStatusListSchema,
    SpeakersResultSchema,
    SpeakersUpdateSerializer,
    TranscriptSchema,
    action_item_json,
    analysis_json,
    call_detail,
    call_status,
    call_summary,
    transcript_json,
)
from transcription.analysis.upload import MULTIPART_OVERHEAD, StorageUploadHandler, StoredUpload, probe_audio
from transcription.capabilities import post_call_available
from transcription.exports import EXPORT_CONTENT_TYPES, EXPORTERS
from transcription.models import UploadedCall
from transcription.services import transcription_check_audio_length

TAG = "Call analysis (uploads)"
MAX_STATUS_IDS = 100

P_INVALID = problem("The request is not valid (the field is named in `errors`)", "validation_failed")
P_NOT_FOUND = problem("No such call, or it is another user's", "call_not_found")
P_NOT_COMPLETED = problem("The call is not COMPLETED yet", "call_not_completed")
P_TOO_LARGE = problem("The file is larger than MAX_FILE_SIZE", "payload_too_large")
P_NOT_AUDIO = problem("The file is not audio (sniffed from its bytes, then decoded)", "unsupported_media_type")
P_KEY_REUSED = problem("The Idempotency-Key was used with a different file", "idempotency_key_reused")
P_STORAGE = problem("Object storage is unavailable; nothing was stored", "storage_unavailable")
P_LENGTH = problem("The upload has no Content-Length (chunked uploads are not accepted)", "length_required")
P_ACTION_NOT_FOUND = problem("No such action item, or it is another user's", "action_item_not_found")

SUMMARY_FIELDS = ("callId", "title", "contactName", "direction", "status", "progress", "durationSeconds", "createdAt")
# The ids are UUIDs; saying so also tells callers (and schemathesis) that /api/calls/status and /api/calls/analyze
# are other resources, not calls named "status" or "analyze".
CALL_ID = OpenApiParameter("call_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The call's id (a UUID)")
EXAMPLE_CALL_ID = "f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6"
EXAMPLE_DETAIL = {
    "callId": EXAMPLE_CALL_ID,
    "title": "Quarterly review",
    "status": "COMPLETED",
    "progress": 100,
    "direction": "OUTGOING",
    "contactName": "Ravi",
    "contactId": "contacts:42",
    "phoneNumber": "+91 98765 43210",
    "organization": "Acme",
    "durationSeconds": 240,
    "recordedAt": "2026-05-29T13:00:00Z",
    "createdAt": "2026-05-29T13:00:00Z",
    "updatedAt": "2026-05-29T13:01:10Z",
    "completedAt": "2026-05-29T13:01:10Z",
    "errorReason": None,
}
EXAMPLE_SPEAKERS = [
    {
        "speakerId": "S1",
        "name": "Priya",
        "role": "user",
        "channel": "left",
        "confidence": 0.97,
        "source": "channel_convention+introduction",
    },
    {
        "speakerId": "S2",
        "name": "Ravi",
        "role": "contact",
        "channel": "right",
        "confidence": 0.97,
        "source": "channel_convention+introduction",
    },
]
EXAMPLE_ACTION_ITEM = {
    "id": "ai_8w1k3m0q2x9c7v5b4n6z",
    "callId": EXAMPLE_CALL_ID,
    "text": "I will send you the revised quote by Friday",
    "owner": "Priya",
    "ownerSpeakerId": "S1",
    "dueDate": "2026-05-29",
    "dueText": "Friday",
    "atSeconds": 3.2,
    "done": False,
    "createdAt": "2026-05-29T13:01:10Z",
    "updatedAt": "2026-05-29T13:01:10Z",
}


class CallsBaseView(APIView):
    permission_classes = [IsTenantUser]
    problem_codes = {"400": "validation_failed", "404": "call_not_found"}


def _owner(request: Request) -> TenantUser:
    user = principal_of(request).user
    assert user is not None  # IsTenantUser
    return user


def _call_or_404(request: Request, call_id: str) -> UploadedCall:
    call = selectors.uploaded_call_get(owner=_owner(request), call_id=call_id)
    if call is None:
        raise ProblemError(404, "call_not_found", f"No call {call_id!r}.")
    return call


def _completed_or_422(call: UploadedCall) -> None:
    if call.status != UploadedCall.Status.COMPLETED:
        raise ProblemError(
            422,
            "call_not_completed",
            f"The call is {call.status}; it can be read once it is COMPLETED.",
            callStatus=call.status,
        )


def _text_part(request: Request, name: str) -> str | None:
    """A small part's text, whether it came as a form field or as a file part (a browser sends a `Blob` of type
    application/json as a file part). Raises ProblemError 400 when a file part is not UTF-8."""
    form: Any = request.data
    value: Any = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raw = value.read() if hasattr(value, "read") else value
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise ProblemError(
            400, "validation_failed", f"{name} is not UTF-8 text.", errors={name: ["Not UTF-8 text."]}
        ) from None


def _metadata(request: Request) -> services.CallMetadata:
    raw = _text_part(request, "metadata")
    envelope: Any = {}
    if raw not in (None, ""):
        try:
            envelope = json_loads_bounded(raw)
        except ValueError:
            raise ProblemError(
                400, "validation_failed", "metadata is not valid JSON.", errors={"metadata": ["Not valid JSON."]}
            ) from None
        if not isinstance(envelope, dict):
            raise ProblemError(
                400, "validation_failed", "metadata must be a JSON object.", errors={"metadata": ["Not an object."]}
            )
    serializer = CallMetadataSerializer(data=envelope)
    if not serializer.is_valid():
        field = next(iter(serializer.errors))
        raise ProblemError(
            400,
            "validation_failed",
            f"metadata.{field}: {serializer.errors[field][0]}",
            errors={f"metadata.{name}": value for name, value in serializer.errors.items()},
        )
    data = serializer.validated_data
    title = data.get("title") or (_text_part(request, "title") or "")[:500]
    return services.CallMetadata(
        title=title,
        contact_name=data.get("contactName", ""),
        contact_id=data.get("contactId", ""),
        phone_number=data.get("phoneNumber", ""),
        organization=data.get("organization", ""),
        direction=data.get("direction", ""),
        recorded_at=data.get("recordedAt"),
        duration_seconds=data.get("durationSeconds"),
    )


class CallAnalyzeView(CallsBaseView):
    parser_classes = [MultiPartParser]
    problem_codes = {"400": "validation_failed", "404": "call_not_found", "415": "unsupported_media_type"}

    @extend_schema(
        tags=[TAG],
        operation_id="call_analyze",
        summary="Submit a recording for analysis",
        description=(
            "Multipart upload: `file` (the recording), `metadata` (JSON envelope, every field optional; unknown "
            "fields or wrong types are 400 naming the field; a missing part counts as `{}`), `title` (used when "
            "metadata has none). The file streams to object storage as it arrives (never held in memory); it is "
            "recognised from its bytes (not its name or part type) and must decode as audio. Content-Length is "
            "required and checked against MAX_FILE_SIZE before anything is read. `Idempotency-Key` replays return "
            "the first upload's callId (202, `Idempotent-Replayed: true`); the same key with a different file is "
            "422 `idempotency_key_reused`. Poll `GET /api/calls/status`; an `analysis_completed` event follows."
        ),
        request={"multipart/form-data": AnalyzeRequestSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        examples=[
            OpenApiExample(
                "metadata",
                request_only=True,
                value={
                    "metadata": json.dumps(
                        {"contactName": "Ravi", "direction": "OUTGOING", "recordedAt": "2026-05-29T13:00:00Z"}
                    )
                },
            ),
        ],
        responses={
            202: OpenApiResponse(
                CallAcceptedSchema,
                description="Accepted; processing is queued",
                examples=[OpenApiExample("queued", value={"callId": EXAMPLE_CALL_ID, "status": "QUEUED"})],
            ),
            400: P_INVALID,
            411: P_LENGTH,
            413: P_TOO_LARGE,
            415: P_NOT_AUDIO,
            422: P_KEY_REUSED,
            503: P_STORAGE,
            **PROBLEM_RESPONSES,
        },
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        owner = _owner(request)
        length_header = request.META.get("CONTENT_LENGTH") or ""
        if not length_header:
            raise ProblemError(411, "length_required", "Send the upload with a Content-Length.")
        try:
            length = int(length_header)
        except ValueError:
            raise ProblemError(400, "validation_failed", "Content-Length is not a number.") from None
        if length > settings.MAX_FILE_SIZE + MULTIPART_OVERHEAD:
            raise ProblemError(413, "payload_too_large", f"The file is larger than {settings.MAX_FILE_SIZE} bytes.")
        if not (request.content_type or "").startswith("multipart/form-data"):
            raise ProblemError(415, "unsupported_media_type", "Send multipart/form-data with a `file` part.")
        idempotency_key = request.headers.get("Idempotency-Key", "").strip()
        if len(idempotency_key) > 255:
            raise ProblemError(
                400, "validation_failed", "Idempotency-Key is too long.", errors={"Idempotency-Key": ["Too long."]}
            )
        if not post_call_available():
            raise ProblemError(503, "transcription_unavailable", "No speech model is available on this server.")
        if not principal.tenant.transcription_enabled:
            raise ProblemError(403, "transcription_disabled", "Transcription is disabled for this tenant.")

        handler = StorageUploadHandler(
            request._request, tenant_key=str(principal.tenant.pk), max_bytes=settings.MAX_FILE_SIZE
        )
        request._request.upload_handlers = [handler]
        try:
            request.data  # noqa: B018  # parses the multipart body: the file streams to storage here
            stored = request.FILES.get("file")
            if not isinstance(stored, StoredUpload):
                raise ProblemError(
                    400, "validation_failed", "The `file` part is missing.", errors={"file": ["Required."]}
                )
            metadata = _metadata(request)
            duration = probe_audio(stored.key)
            transcription_check_audio_length(seconds=duration)
            call, created = services.uploaded_call_create(
                tenant=principal.tenant,
                owner=owner,
                stored=stored,
                metadata=metadata,
                measured_duration=duration,
                idempotency_key=idempotency_key,
            )
        except BaseException:
            handler.discard()
            raise
        if not created:
            handler.discard()  # the replay's copy of the file: the first upload's object is the one kept
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response({"callId": str(call.pk), "status": call.status}, status=202, headers=headers)


class _DeleteWithBodySchema(AutoSchema):
    """drf-spectacular documents request bodies for POST/PUT/PATCH only; the bulk delete takes one."""

    def _get_request_body(self, direction: str = "request") -> Any:
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


class CallListView(CallsBaseView):
    parser_classes = [JSONParser]
    schema = _DeleteWithBodySchema()

    @extend_schema(
        tags=[TAG],
        operation_id="calls_list",
        summary="List the caller's calls",
        description="Newest first. Keyset cursor: rows added meanwhile never shift or repeat a page.",
        parameters=[
            OpenApiParameter("limit", int, description="1..100, default 50"),
            OpenApiParameter("cursor", str, description="`nextCursor` of the previous page"),
            OpenApiParameter("status", str, enum=[s.value for s in UploadedCall.Status]),
        ],
        responses={
            200: OpenApiResponse(
                CallPageSchema,
                description="A page",
                examples=[
                    OpenApiExample(
                        "page",
                        value={
                            "items": [{k: EXAMPLE_DETAIL[k] for k in SUMMARY_FIELDS}],
                            "nextCursor": "WyIyMDI2LTA1LTI5VDEzOjAwOjAwKzAwOjAwIiwgImYwYTEiXQ",
                        },
                    )
                ],
            ),
            400: P_INVALID,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in UploadedCall.Status.values:
            raise ProblemError(
                400,
                "validation_failed",
                f"status must be one of {', '.join(UploadedCall.Status.values)}.",
                errors={"status": ["Unknown status."]},
            )
        limit = parse_limit(request.query_params.get("limit"))
        queryset = selectors.uploaded_calls_of(owner=_owner(request), status=status).select_related("transcription")
        # The cursor carries (createdAt, id); the id as text keeps it JSON and sorts the same way every time.
        queryset = queryset.annotate(id_text=Cast("id", output_field=CharField()))
        page = paginate(
            queryset, cursor=request.query_params.get("cursor"), limit=limit, order=("-created_at", "-id_text")
        )
        return Response({"items": [call_summary(c) for c in page.items], "nextCursor": page.next_cursor})

    @extend_schema(
        tags=[TAG],
        operation_id="calls_bulk_delete",
        summary="Delete many calls",
        description="Up to 100 ids. Each call's stored object is deleted before its rows; a call whose object "
        "storage refused stays and is listed in `failed`. Ids that are not the caller's count as `missing`.",
        request=BulkDeleteSerializer,
        examples=[OpenApiExample("ids", value={"callIds": [EXAMPLE_CALL_ID]}, request_only=True)],
        responses={
            200: OpenApiResponse(
                BulkDeleteResultSchema,
                description="What happened",
                examples=[OpenApiExample("result", value={"deleted": 2, "missing": 0, "failed": []})],
            ),
            400: P_INVALID,
            **PROBLEM_RESPONSES,
        },
    )
    def delete(self, request: Request) -> Response:
        serializer = BulkDeleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.uploaded_calls_delete_bulk(
            owner=_owner(request),
            call_ids=list(serializer.validated_data["callIds"]),
            actor=actor_of(principal_of(request)),
        )
        return Response(result)


class CallStatusView(CallsBaseView):
    @extend_schema(
        tags=[TAG],
        operation_id="calls_status",
        summary="Bulk poll statuses",
        description="`ids`: comma-separated call ids, up to 100 (one database query). Ids that are not the "
        "caller's calls are left out of `items` and listed in `missing`. Cheap enough to poll every 3-5 s.",
        parameters=[OpenApiParameter("ids", str, required=True, description="comma-separated call ids (<= 100)")],
        responses={
            200: OpenApiResponse(
                CallStatusListSchema,
                description="Statuses, in the order asked",
                examples=[
                    OpenApiExample(
                        "statuses",
                        value={
                            "items": [{"callId": EXAMPLE_CALL_ID, "status": "TRANSCRIBING", "progress": 42}],
                            "missing": [],
                        },
                    )
                ],
            ),
            400: P_INVALID,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("ids", "")
        ids = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
        if not ids:
            raise ProblemError(400, "validation_failed", "ids is required.", errors={"ids": ["Required."]})
        if len(ids) > MAX_STATUS_IDS:
            raise ProblemError(
                400, "validation_failed", f"At most {MAX_STATUS_IDS} ids.", errors={"ids": ["Too many ids."]}
            )
        found = selectors.uploaded_calls_by_ids(owner=_owner(request), call_ids=ids)
        return Response(
            {
                "items": [call_status(found[i]) for i in ids if i in found],
                "missing": [i for i in ids if i not in found],
            }
        )


class CallDetailView(CallsBaseView):
    @extend_schema(
        tags=[TAG],
        operation_id="call_get",
        summary="One call",
        parameters=[CALL_ID],
        responses={
            200: OpenApiResponse(
                CallDetailSchema, description="The call", examples=[OpenApiExample("call", value=EXAMPLE_DETAIL)]
            ),
            404: P_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, call_id: str) -> Response:
        return Response(call_detail(_call_or_404(request, call_id)))

    @extend_schema(
        tags=[TAG],
        operation_id="call_delete",
        summary="Hard-delete a call, its artifacts and its action items",
        description="The stored object is deleted first, then the rows. If storage refuses, nothing else is "
        "deleted (503 storage_unavailable; retry).",
        parameters=[CALL_ID],
        responses={204: None, 404: P_NOT_FOUND, 503: P_STORAGE, **PROBLEM_RESPONSES},
    )
    def delete(self, request: Request, call_id: str) -> Response:
        call = _call_or_404(request, call_id)
        try:
            services.uploaded_call_delete(call=call, actor=actor_of(principal_of(request)))
        except services.CallDeleteFailed:
            raise ProblemError(503, "storage_unavailable", "Object storage is unavailable; try again.") from None
        return Response(status=204)


class _ExportNegotiation(BaseContentNegotiation):
    """`format` picks a transcript export rendered by the view, not one of DRF's renderers."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class CallTranscriptView(CallsBaseView):
    content_negotiation_class = _ExportNegotiation

    @extend_schema(
        tags=[TAG],
        operation_id="call_transcript",
        summary="The call's transcript",
        description="`format=json` (default): segments with speaker id and resolved name, language, duration, the "
        "speaker map and whether speakers were separated (stereo channels) or not (mono: no diarization "
        "backend is installed; one speaker). `text`, `vtt`, `srt`: the same as documents.",
        parameters=[CALL_ID, OpenApiParameter("format", str, enum=["json", "text", "vtt", "srt"])],
        responses={
            (200, "application/json"): OpenApiResponse(
                TranscriptSchema,
                description="The transcript",
                examples=[
                    OpenApiExample(
                        "stereo",
                        value={
                            "callId": EXAMPLE_CALL_ID,
                            "language": "en",
                            "durationSeconds": 7.4,
                            "speakerSeparation": "stereo_channels",
                            "diarization": {"available": False, "note": None},
                            "speakers": EXAMPLE_SPEAKERS,
                            "segments": [
                                {
                                    "speakerId": "S2",
                                    "speaker": "Ravi",
                                    "start": 0.5,
                                    "end": 2.4,
                                    "text": "Hello, this is Ravi from Acme.",
                                },
                            ],
                        },
                    )
                ],
            ),
            (200, "text/vtt"): OpenApiResponse(str, description="WebVTT"),
            400: P_INVALID,
            404: P_NOT_FOUND,
            422: P_NOT_COMPLETED,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, call_id: str) -> Response | HttpResponse:
        fmt = request.query_params.get("format", "json")
        if fmt != "json" and fmt not in EXPORTERS:
            raise ProblemError(
                400, "validation_failed", "format must be json, text, vtt or srt.", errors={"format": ["Unknown."]}
            )
        call = _call_or_404(request, call_id)
        _completed_or_422(call)
        segments = selectors.uploaded_call_segments(call=call)
        if fmt == "json":
            return Response(transcript_json(call, segments))
        return HttpResponse(EXPORTERS[fmt](segments), content_type=EXPORT_CONTENT_TYPES[fmt])


class CallAnalysisView(CallsBaseView):
    @extend_schema(
        tags=[TAG],
        operation_id="call_analysis",
        summary="The call's analysis",
        description="Summary, action items (owner when named, due date resolved against `recordedAt`), key topics, "
        "talk-time share per speaker, questions asked. Names follow speaker corrections.",
        parameters=[CALL_ID],
        responses={
            200: OpenApiResponse(
                AnalysisSchema,
                description="The analysis",
                examples=[
                    OpenApiExample(
                        "analysis",
                        value={
                            "callId": EXAMPLE_CALL_ID,
                            "summary": "Thanks Ravi. I will send you the revised quote by Friday.",
                            "actionItems": [EXAMPLE_ACTION_ITEM],
                            "keyTopics": ["revised", "quote", "friday"],
                            "talkTime": [{"speakerId": "S1", "name": "Priya", "share": 0.6}],
                            "questions": [],
                            "speakers": EXAMPLE_SPEAKERS,
                            "analyzer": "rules",
                        },
                    )
                ],
            ),
            404: P_NOT_FOUND,
            422: P_NOT_COMPLETED,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, call_id: str) -> Response:
        call = _call_or_404(request, call_id)
        _completed_or_422(call)
        items = list(call.action_items.order_by("at_seconds", "id"))
        return Response(analysis_json(call, items))


class CallSpeakersView(CallsBaseView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        operation_id="call_speakers_update",
        summary="Correct the speaker names",
        description="`{speakers: {speakerId: name}}`. The transcript, analysis and action-item owners follow.",
        parameters=[CALL_ID],
        request=SpeakersUpdateSerializer,
        examples=[OpenApiExample("rename", value={"speakers": {"S2": "Ravi Kumar"}}, request_only=True)],
        responses={
            200: OpenApiResponse(
                SpeakersResultSchema,
                description="The corrected speaker map",
                examples=[OpenApiExample("speakers", value={"speakers": EXAMPLE_SPEAKERS})],
            ),
            400: P_INVALID,
            404: P_NOT_FOUND,
            422: P_NOT_COMPLETED,
            **PROBLEM_RESPONSES,
        },
    )
    def patch(self, request: Request, call_id: str) -> Response:
        call = _call_or_404(request, call_id)
        serializer = SpeakersUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = services.uploaded_call_speakers_update(call=call, names=dict(serializer.validated_data["speakers"]))
        return Response({"speakers": transcript_json(updated, [])["speakers"]})


class ActionItemListView(CallsBaseView):
    problem_codes = {"400": "validation_failed", "404": "action_item_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="action_items_list",
        summary="The caller's open action items across their calls",
        description="Newest first, cursor-paginated like `GET /api/calls`. Done items are left out.",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("cursor", str)],
        responses={
            200: OpenApiResponse(
                ActionItemPageSchema,
                description="A page",
                examples=[OpenApiExample("page", value={"items": [EXAMPLE_ACTION_ITEM], "nextCursor": None})],
            ),
            400: P_INVALID,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit"))
        page = paginate(
            selectors.action_items_open(user=_owner(request)),
            cursor=request.query_params.get("cursor"),
            limit=limit,
            order=("-created_at", "-id"),
        )
        return Response({"items": [action_item_json(i) for i in page.items], "nextCursor": page.next_cursor})


class ActionItemDetailView(CallsBaseView):
    parser_classes = [JSONParser]
    problem_codes = {"400": "validation_failed", "404": "action_item_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="action_item_update",
        summary="Mark an action item done (or not)",
        request=ActionItemUpdateSerializer,
        parameters=[OpenApiParameter("item_id", str, OpenApiParameter.PATH)],
        examples=[OpenApiExample("done", value={"done": True}, request_only=True)],
        responses={
            200: OpenApiResponse(
                ActionItemSchema,
                description="The item",
                examples=[OpenApiExample("item", value={**EXAMPLE_ACTION_ITEM, "done": True})],
            ),
            400: P_INVALID,
            404: P_ACTION_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def patch(self, request: Request, item_id: str) -> Response:
        item = selectors.action_item_get(user=_owner(request), item_id=item_id)
        if item is None:
            raise ProblemError(404, "action_item_not_found", f"No action item {item_id!r}.")
        serializer = ActionItemUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.action_item_update(item=item, done=serializer.validated_data["done"])
        return Response(action_item_json(item))
