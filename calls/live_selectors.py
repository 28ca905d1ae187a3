"""Reads of live calls: who sees which, and the recording URL a reader gets."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from calls.models import LiveCall
from recordings import storage
from recordings.models import MediaEntry
from scaiwave.api.auth import Principal


def live_calls_visible(*, principal: Principal, status: str | None = None) -> QuerySet[LiveCall]:
    """The list a caller sees: the tenant's server key sees every live call of the tenant, a user the
    calls they host (an audience member finds a call through the host's product, then reads it by id)."""
    rows = LiveCall.objects.filter(tenant=principal.tenant).select_related("host")
    if principal.user is not None:
        rows = rows.filter(host=principal.user)
    if status:
        rows = rows.filter(status=status)
    return rows


def live_call_get(*, principal: Principal, live_call_id: str) -> LiveCall | None:
    """One live call by id: any user of the tenant may read it (the audience needs it to join); another
    tenant's call, or a malformed id, is None (404)."""
    try:
        pk = uuid.UUID(str(live_call_id))
    except ValueError:
        return None
    return LiveCall.objects.filter(tenant=principal.tenant, pk=pk).select_related("host").first()


def live_call_recording_url(live: LiveCall) -> str | None:
    """A time-limited download URL (MEDIA_URL_TTL) for the recording's composite file, signed afresh on
    every read; None until the recording is ready or when the file is gone."""
    if not live.recording_media_id:
        return None
    entry = MediaEntry.objects.filter(pk=live.recording_media_id, missing_since__isnull=True).first()
    if entry is None:
        return None
    url, _ = storage.download_url(entry_id=entry.pk, key=entry.key)
    return url
