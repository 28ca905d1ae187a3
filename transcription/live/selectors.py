"""Reads of live transcription sessions, scoped to a tenant's room."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from rooms.models import Room
from transcription.models import Transcription, TranscriptSegment


def live_session_current(*, room: Room) -> Transcription | None:
    """The room's active live session, else its most recent one (stopped), else None."""
    sessions = Transcription.objects.filter(room=room, mode=Transcription.Mode.LIVE)
    return (
        sessions.filter(status=Transcription.Status.ACTIVE).order_by("-created_at").first()
        or sessions.order_by("-created_at").first()
    )


def live_session_active(*, room: Room) -> Transcription | None:
    return (
        Transcription.objects.filter(room=room, mode=Transcription.Mode.LIVE, status=Transcription.Status.ACTIVE)
        .order_by("-created_at")
        .first()
    )


def live_segments(*, transcription: Transcription, since: datetime | None = None) -> QuerySet[TranscriptSegment]:
    segments = TranscriptSegment.objects.filter(transcription=transcription)
    if since is not None:
        segments = segments.filter(created_at__gt=since)
    return segments.order_by("index")
