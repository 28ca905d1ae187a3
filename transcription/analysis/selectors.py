"""Reads of the uploaded-call surface. Every read is scoped to the calling user: another user's call is absent."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from scaiwave.models import TenantUser
from transcription.models import ActionItem, TranscriptSegment, UploadedCall


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def uploaded_calls_of(*, owner: TenantUser, status: str | None = None) -> QuerySet[UploadedCall]:
    queryset = UploadedCall.objects.filter(tenant_id=owner.tenant_id, owner=owner)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def uploaded_call_get(*, owner: TenantUser, call_id: str) -> UploadedCall | None:
    pk = _uuid_or_none(call_id)
    if pk is None:
        return None
    return uploaded_calls_of(owner=owner).select_related("transcription").filter(pk=pk).first()


def uploaded_calls_by_ids(*, owner: TenantUser, call_ids: list[str]) -> dict[str, UploadedCall]:
    """The caller's calls among `call_ids` (one query), keyed by their id as given; unknown ids are absent."""
    wanted = {pk: raw for raw in call_ids if (pk := _uuid_or_none(raw)) is not None}
    rows = uploaded_calls_of(owner=owner).select_related("transcription").filter(pk__in=list(wanted))
    return {wanted[row.pk]: row for row in rows}


def uploaded_call_segments(*, call: UploadedCall) -> list[TranscriptSegment]:
    if call.transcription_id is None:
        return []
    return list(TranscriptSegment.objects.filter(transcription_id=call.transcription_id).order_by("index"))


def action_items_open(*, user: TenantUser) -> QuerySet[ActionItem]:
    return ActionItem.objects.filter(user=user, done=False).select_related("call")


def action_item_get(*, user: TenantUser, item_id: str) -> ActionItem | None:
    return ActionItem.objects.filter(user=user, pk=item_id).select_related("call").first()
