"""Reads of the transcription app, always scoped to a tenant."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from scaiwave.models import Tenant
from transcription.models import Transcription, TranscriptSegment


def transcription_list(
    *, tenant: Tenant, recording_id: str | None = None, status: str | None = None
) -> QuerySet[Transcription]:
    queryset = Transcription.objects.filter(tenant=tenant).annotate(segment_count=Count("segments"))
    if recording_id:
        queryset = queryset.filter(recording_id=recording_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def transcription_list_post_call(
    *, tenant: Tenant, recording_id: str | None = None, status: str | None = None
) -> QuerySet[Transcription]:
    """GET /v1/transcriptions ("list all post-call transcriptions"): recording transcriptions only — no live
    session, no transcription made for an uploaded call's analysis (document 002 lists those itself)."""
    return (
        transcription_list(tenant=tenant, recording_id=recording_id, status=status)
        .filter(mode=Transcription.Mode.POST_CALL)
        .exclude(uploaded_calls__isnull=False)
        .exclude(media_entry__source="upload")
    )


def transcription_get(*, tenant: Tenant, transcription_id: str) -> Transcription | None:
    return transcription_list(tenant=tenant).filter(pk=transcription_id).first()


def segments_of(*, transcription: Transcription) -> QuerySet[TranscriptSegment]:
    return TranscriptSegment.objects.filter(transcription=transcription).order_by("index")
