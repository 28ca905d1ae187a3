"""Post-call transcription endpoints (document 001, X-API-Key): queue, list, get (with exports), delete."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.errors import ProblemError
from scaiwave.api.idempotency import idempotent
from scaiwave.api.pagination import paginate, parse_limit
from scaiwave.api.permissions import IsTenantServer, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.audit import actor_of
from transcription import selectors, services
from transcription.exports import EXPORT_CONTENT_TYPES, EXPORTERS
from transcription.models import Transcription
from transcription.serializers import (
    TranscribeRequestSerializer,
    TranscriptionDetailSerializer,
    TranscriptionQueuedSerializer,
    TranscriptionSummarySerializer,
)

TAG = "Transcription (post-call)"

P_INVALID = problem("The request is not valid", "validation_failed")
P_LANGUAGE = problem("The language is not one the speech model knows", "unsupported_language")
P_UNAVAILABLE = problem(
    "Post-call transcription is disabled or no speech model is installed", "transcription_unavailable"
)
P_NOT_FOUND = problem("No such transcription (also another tenant's)", "transcription_not_found")

TranscriptionPage = inline_serializer(
    "TranscriptionPage",
    {
        "transcriptions": TranscriptionSummarySerializer(many=True),
        "nextCursor": serializers.CharField(allow_null=True),
    },
)

EXAMPLE_SUMMARY = {
    "transcriptionId": "tr_8w1k3m0q2x9c7v5b4n6z",
    "recordingId": "rec_2m4k6q8s0u1w3y5a7c9e",
    "mediaEntryId": None,
    "status": "completed",
    "language": "en-US",
    "detectedLanguage": "en",
    "model": "base",
    "progress": 100,
    "duration": 7.1,
    "segmentCount": 1,
    "error": None,
    "queuedAt": "2026-11-21T12:00:00Z",
    "startedAt": "2026-11-21T12:00:01Z",
    "completedAt": "2026-11-21T12:00:02Z",
}


class _ExportNegotiation(BaseContentNegotiation):
    """`format` picks an export here (rendered by the view itself), not one of DRF's renderers; any Accept goes."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class TranscriptionsBaseView(APIView):
    permission_classes = [IsTenantServer]
    problem_codes = {"404": "transcription_not_found"}


def _get_or_404(request: Request, transcription_id: str) -> Transcription:
    transcription = selectors.transcription_get(tenant=principal_of(request).tenant, transcription_id=transcription_id)
    if transcription is None:
        raise ProblemError(404, "transcription_not_found", f"No transcription {transcription_id!r}.")
    return transcription


class RecordingTranscribeView(TranscriptionsBaseView):
    problem_codes = {"404": "recording_not_found"}

    @extend_schema(
        tags=[TAG],
        operation_id="recording_transcribe",
        summary="Queue a post-call transcription job",
        description="Transcribes a finished recording on this server (no audio leaves it). Speakers come from the "
        "recording's per-participant audio tracks when it has them, else from `participants`, else "
        "`Speaker 1..n`. Poll `GET /v1/transcriptions/{id}` for `progress`; a `transcription_completed` event "
        "follows. Honours `Idempotency-Key`.",
        request=TranscribeRequestSerializer,
        parameters=[OpenApiParameter("recording_id", str, OpenApiParameter.PATH, description="The recording's id")],
        examples=[
            OpenApiExample(
                "with a speaker map",
                value={"language": "en-US", "participants": {"TR_AMabc": "Alice", "bob": "Bob"}},
                request_only=True,
            ),
            OpenApiExample(
                "queued",
                value={
                    "transcriptionId": "tr_8w1k3m0q2x9c7v5b4n6z",
                    "recordingId": "rec_2m4k6q8s0u1w3y5a7c9e",
                    "status": "queued",
                    "queuedAt": "2026-11-21T12:00:00Z",
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
        responses={
            202: TranscriptionQueuedSerializer,
            400: P_LANGUAGE,
            403: problem("Transcription is disabled for this tenant", "transcription_disabled"),
            404: problem("No such recording (also another tenant's)", "recording_not_found"),
            409: problem("The recording has no finished media yet", "recording_not_ready"),
            422: problem("A file of the recording is longer than MAX_AUDIO_SECONDS", "audio_too_long"),
            503: P_UNAVAILABLE,
            **PROBLEM_RESPONSES,
        },
    )
    @idempotent
    def post(self, request: Request, recording_id: str) -> Response:
        serializer = TranscribeRequestSerializer(data=request.data)
        if not serializer.is_valid():
            raise ProblemError(400, "validation_failed", "The request is not valid.", errors=serializer.errors)
        transcription = services.transcription_request(
            tenant=principal_of(request).tenant,
            recording_id=recording_id,
            language=serializer.validated_data["language"],
            participants=serializer.validated_data["participants"],
        )
        return Response(TranscriptionQueuedSerializer(transcription).data, status=202)


class TranscriptionListView(TranscriptionsBaseView):
    @extend_schema(
        tags=[TAG],
        operation_id="transcriptions_list",
        summary="List post-call transcriptions, newest first",
        parameters=[
            OpenApiParameter("cursor", str, description="`nextCursor` of the previous page"),
            OpenApiParameter("limit", int, description="1..100, default 50"),
            OpenApiParameter("recordingId", str, description="Only this recording's transcriptions"),
            OpenApiParameter("status", str, enum=[s.value for s in Transcription.Status]),
        ],
        examples=[
            OpenApiExample(
                "one page", value={"transcriptions": [EXAMPLE_SUMMARY], "nextCursor": None}, response_only=True
            )
        ],
        responses={200: TranscriptionPage, 400: P_INVALID, **PROBLEM_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in Transcription.Status.values:
            raise ProblemError(400, "validation_failed", "Unknown status.", errors={"status": ["Unknown status."]})
        queryset = selectors.transcription_list_post_call(
            tenant=principal_of(request).tenant,
            recording_id=request.query_params.get("recordingId") or None,
            status=status,
        )
        page = paginate(
            queryset, cursor=request.query_params.get("cursor"), limit=parse_limit(request.query_params.get("limit"))
        )
        return Response(
            {
                "transcriptions": TranscriptionSummarySerializer(page.items, many=True).data,
                "nextCursor": page.next_cursor,
            }
        )


class TranscriptionDetailView(TranscriptionsBaseView):
    content_negotiation_class = _ExportNegotiation

    @extend_schema(
        tags=[TAG],
        operation_id="transcription_get",
        summary="A transcription with its segments, or an export of it",
        description="`format=text` gives `[HH:MM:SS] Speaker: text` lines (document 001); `format=vtt` WebVTT with "
        "`<v Speaker>` voice spans; `format=srt` SubRip with `Speaker: ` prefixes. Exports of a transcription that "
        "is not completed yet are empty documents.",
        parameters=[
            OpenApiParameter("transcription_id", str, OpenApiParameter.PATH, description="tr_…"),
            OpenApiParameter("format", str, enum=["json", "text", "vtt", "srt"], description="Default json"),
        ],
        examples=[
            OpenApiExample(
                "completed",
                value={
                    **EXAMPLE_SUMMARY,
                    "participants": {"alice": "Alice"},
                    "segments": [
                        {
                            "index": 0,
                            "start": 0.0,
                            "end": 2.1,
                            "text": "He was not an ill-disposed young man.",
                            "speaker": "Alice",
                            "speakerLabel": "alice",
                            "confidence": 0.71,
                            "words": [{"start": 0.0, "end": 0.34, "text": "He", "probability": 0.69}],
                        }
                    ],
                },
                response_only=True,
            )
        ],
        responses={
            (200, "application/json"): TranscriptionDetailSerializer,
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="format=text"),
            (200, "text/vtt"): OpenApiResponse(OpenApiTypes.STR, description="format=vtt"),
            (200, "application/x-subrip"): OpenApiResponse(OpenApiTypes.STR, description="format=srt"),
            400: P_INVALID,
            404: P_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, transcription_id: str) -> Response | HttpResponse:
        export = request.query_params.get("format", "json")
        if export not in ("json", *EXPORTERS):
            raise ProblemError(
                400,
                "validation_failed",
                "format must be json, text, vtt or srt.",
                errors={"format": ["Unknown format."]},
            )
        transcription = _get_or_404(request, transcription_id)
        segments = list(selectors.segments_of(transcription=transcription))
        if export != "json":
            body = EXPORTERS[export](segments)
            response = HttpResponse(body, content_type=EXPORT_CONTENT_TYPES[export])
            extension = {"text": "txt", "vtt": "vtt", "srt": "srt"}[export]
            response["Content-Disposition"] = f'inline; filename="{transcription.pk}.{extension}"'
            return response
        return Response(TranscriptionDetailSerializer(transcription, context={"segments": segments}).data)

    @extend_schema(
        tags=[TAG],
        operation_id="transcription_delete",
        summary="Delete a transcription and all its segments",
        parameters=[OpenApiParameter("transcription_id", str, OpenApiParameter.PATH, description="tr_…")],
        responses={204: None, 404: P_NOT_FOUND, **PROBLEM_RESPONSES},
    )
    def delete(self, request: Request, transcription_id: str) -> Response:
        services.transcription_delete(
            transcription=_get_or_404(request, transcription_id), actor=actor_of(principal_of(request))
        )
        return Response(status=204)
