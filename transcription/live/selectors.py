"""Reads of live transcription sessions, scoped to a tenant's room."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet

from rooms.models import Room, RoomParticipant
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
    """The session's segments; with `since`, those stored after it at the precision times are shown in (ms).

    A client passes back a time it was shown ("…12:00:00.123Z"); the segment stored at 12:00:00.123456 is the one
    it already has, so `since` names the whole millisecond: only segments from the next one on are returned.
    """
    segments = TranscriptSegment.objects.filter(transcription=transcription)
    if since is not None:
        try:
            after = since.replace(microsecond=since.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
        except OverflowError:
            return segments.none()
        segments = segments.filter(created_at__gte=after)
    return segments.order_by("index")


def participant_token_name(*, room_id: int | None, identity: str) -> str:
    """The display `name` of the token `identity` joined the room with (its newest connection), or ""."""
    if room_id is None or not identity:
        return ""
    names = (
        RoomParticipant.objects.filter(room_id=room_id, identity=identity)
        .exclude(name="")
        .order_by("-joined_at")
        .values_list("name", flat=True)
    )
    return names.first() or ""
