"""Reads of calls and timelines, scoped to a tenant."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from calls.models import Call, CallParticipant, TimelineEntry
from rooms.models import Room
from scaiwave.models import Tenant


def call_get(*, tenant: Tenant, call_id: str) -> Call | None:
    """The tenant's call with its room, initiator and participants; None for another tenant's call."""
    return (
        Call.objects.select_related("room", "initiator")
        .prefetch_related(Prefetch("participants", queryset=CallParticipant.objects.select_related("user")))
        .filter(tenant=tenant, pk=call_id)
        .first()
    )


def call_live_for_room(*, room: Room) -> Call | None:
    return Call.objects.filter(room=room, status__in=Call.LIVE_STATUSES).first()


def call_live_by_livekit_room(*, livekit_room: str) -> Call | None:
    """The ringing or active call that owns this LiveKit room, with its (open) room; None for any other room."""
    return (
        Call.objects.select_related("room")
        .filter(livekit_room=livekit_room, status__in=Call.LIVE_STATUSES, room__closed_at__isnull=True)
        .first()
    )


def calls_for_room(*, room: Room, status: str | None = None) -> QuerySet[Call]:
    queryset = (
        Call.objects.filter(room=room)
        .select_related("room", "initiator")
        .prefetch_related(Prefetch("participants", queryset=CallParticipant.objects.select_related("user")))
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def timeline_for_room(*, room: Room) -> QuerySet[TimelineEntry]:
    return TimelineEntry.objects.filter(room=room)


def call_recordings(*, call: Call) -> list[dict[str, Any]]:
    """The call's finished recordings as media references; the recordings app owns them."""
    # Imported here: recordings' models refer to calls' models, so a module-level import would be circular
    # whenever the recordings app is loaded first.
    from recordings.selectors import media_references_for_call

    return media_references_for_call(call)
