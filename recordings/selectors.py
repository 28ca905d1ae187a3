"""Reads of recordings and media entries, and the media references clients get."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, QuerySet

from recordings import storage
from recordings.models import MediaEntry, Recording, RecordingEgress
from rooms.models import Room
from rooms.services import iso_ms
from scaiwave.models import Tenant

if TYPE_CHECKING:
    from calls.models import Call


def _with_details(queryset: QuerySet[Recording]) -> QuerySet[Recording]:
    return queryset.select_related("room", "call", "requested_by").prefetch_related(
        Prefetch("egresses", queryset=RecordingEgress.objects.order_by("created_at", "id")),
        Prefetch("media_entries", queryset=MediaEntry.objects.select_related("egress").order_by("created_at", "id")),
    )


def recording_get(*, tenant: Tenant, reference: str) -> Recording | None:
    """The tenant's recording by its id (`rec_…`) or by one of its egress ids (`EG_…`, document 001's id)."""
    queryset = _with_details(Recording.objects.filter(tenant=tenant))
    if reference.startswith("rec_"):
        return queryset.filter(pk=reference).first()
    return queryset.filter(egresses__egress_id=reference).first()


def recording_active_for_room(*, room: Room) -> Recording | None:
    """The room recording (not a call's) that is starting or recording, if any."""
    return _with_details(
        Recording.objects.filter(room=room, call__isnull=True, status__in=Recording.ACTIVE_STATUSES)
    ).first()


def recording_active_for_call(*, call: Call) -> Recording | None:
    return _with_details(Recording.objects.filter(call=call, status__in=Recording.ACTIVE_STATUSES)).first()


def recording_latest_for_call(*, call: Call) -> Recording | None:
    return _with_details(Recording.objects.filter(call=call)).order_by("-created_at").first()


def recordings_for_call(*, call: Call) -> QuerySet[Recording]:
    return _with_details(Recording.objects.filter(call=call)).order_by("created_at")


def composite_egress(recording: Recording) -> RecordingEgress | None:
    for egress in recording.egresses.all():
        if egress.kind == RecordingEgress.Kind.ROOM_COMPOSITE:
            return egress
    return None


def composite_media(recording: Recording) -> MediaEntry | None:
    """The recording's main file (the room composite), once registered."""
    for entry in recording.media_entries.all():
        if entry.egress is None or entry.egress.kind == RecordingEgress.Kind.ROOM_COMPOSITE:
            return entry
    return None


def media_reference(entry: MediaEntry, *, ttl: int | None = None) -> dict[str, Any]:
    """What a client needs to fetch one stored file: `{id, contentType, size, durationSeconds, url, urlExpiresAt}`."""
    url, expires_at = storage.download_url(entry_id=entry.pk, key=entry.key, ttl=ttl)
    return {
        "id": entry.pk,
        "contentType": entry.content_type,
        "size": entry.size,
        "durationSeconds": entry.duration_seconds,
        "url": url,
        "urlExpiresAt": iso_ms(expires_at),
    }


def media_references_for_call(call: Call) -> list[dict[str, Any]]:
    """The call's finished recordings (their composite files), oldest first, as media references."""
    references = []
    for recording in recordings_for_call(call=call):
        entry = composite_media(recording)
        if entry is None or entry.missing_since is not None:
            continue
        references.append({**media_reference(entry), "recordingId": recording.pk})
    return references


def media_entry_get(*, entry_id: str) -> MediaEntry | None:
    """Any tenant's entry: the signed download URL is the credential."""
    return MediaEntry.objects.filter(pk=entry_id).first()
