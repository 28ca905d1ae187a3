"""Live transcription sessions: start, stop, speakers, the egress per audio track, and storing what was heard.

A session is a `Transcription` with mode "live" and a room. Starting it asks LiveKit (through the gateway) for a
track egress per audio track, each streaming PCM to `/v1/ingest/audio?token=<signed per-track token>`; tracks
published later get theirs from `live_apply_livekit_event` (a LIVEKIT_EVENT_HANDLERS entry). While the room has a
ringing or active call, its people talk in the call's own LiveKit room (`scaiwave-call-…`), so that is where tracks
are listed and egresses started; a track published in a call's room is mapped back to the call's room and its
session. Which egresses belong to a session is read back from LiveKit (ListEgress: each egress carries its request,
so its WebSocket URL and token), so no extra table is needed and a restart of ScaiWave loses nothing. Stopping marks
the session stopped and stops its egresses; segments heard after that are not stored, so `segmentCount` is final.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from livekit.protocol import egress as lk_egress
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from calls.selectors import call_live_by_livekit_room, call_live_for_room
from rooms import livekit_gateway as gateway
from rooms.models import Room
from rooms.services import iso_ms
from scaiwave.api.errors import ProblemError
from scaiwave.events.services import event_emit
from scaiwave.models import Tenant
from transcription.capabilities import live_available
from transcription.engine import UnsupportedLanguage, whisper_language_for
from transcription.live.profanity import text_apply_options
from transcription.live.recognizer import Dropped, Heard, live_model_name
from transcription.live.selectors import live_session_active, participant_token_name
from transcription.live.tokens import InvalidIngestToken, ingest_token_make, ingest_token_verify
from transcription.models import Transcription, TranscriptSegment

logger = logging.getLogger(__name__)

INGEST_PATH = "/v1/ingest/audio"
SEGMENT_EVENT = "transcription.segment"
HEALTH_EVENT = "transcription.health"

_EGRESS_LIVE = (lk_egress.EgressStatus.EGRESS_STARTING, lk_egress.EgressStatus.EGRESS_ACTIVE)


def _check_available(*, tenant: Tenant) -> None:
    if not live_available():
        raise ProblemError(
            503,
            "transcription_live_unavailable",
            "Live transcription is not available on this server (disabled, or no speech model installed).",
        )
    if not tenant.transcription_enabled:
        raise ProblemError(403, "transcription_disabled", "Transcription is disabled for this tenant.")


def _check_language(language: str) -> None:
    try:
        code = whisper_language_for(language)
    except UnsupportedLanguage as exc:
        raise ProblemError(
            400, "unsupported_language", str(exc), errors={"language": ["Unsupported language."]}
        ) from None
    if code not in (None, "en") and live_model_name(code).endswith(".en"):
        raise ProblemError(
            400,
            "unsupported_language",
            f"The live speech model ({live_model_name(code)}) only transcribes English.",
            errors={"language": ["Only English is available."]},
        )


def _room_or_404(*, tenant: Tenant, room_id: str, lock: bool = False) -> Room:
    rooms = Room.objects.filter(tenant=tenant, name=room_id, closed_at__isnull=True)
    room = (rooms.select_for_update(no_key=True) if lock else rooms).first()
    if room is None:
        raise ProblemError(404, "room_not_found", f"Room {room_id!r} not found.")
    return room


# --- Egress per track --------------------------------------------------------------------------------------


def ingest_url(*, transcription_id: str, track_sid: str, identity: str) -> str:
    """The WebSocket URL a track egress streams to, with its signed per-track token."""
    base = settings.TRANSCRIPTION_LIVE_INGEST_URL or settings.PUBLIC_BASE_URL
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    token = ingest_token_make(transcription_id=transcription_id, track_sid=track_sid, identity=identity)
    return f"{base.rstrip('/')}{INGEST_PATH}?{urlencode({'token': token})}"


def _transcription_of_egress(info: lk_egress.EgressInfo) -> tuple[str, str] | None:
    """(transcription id, track sid) if `info` is one of our live ingest egresses."""
    if not info.HasField("track") or not info.track.websocket_url:
        return None
    url = urlsplit(info.track.websocket_url)
    if not url.path.endswith(INGEST_PATH):
        return None
    token = (parse_qs(url.query).get("token") or [""])[0]
    try:
        # now=0: ownership is a question of the signature, not of whether the token could still dial.
        claims = ingest_token_verify(token, now=0)
    except InvalidIngestToken:
        return None
    return claims.transcription_id, claims.track_sid


def _media_room(room: Room) -> str:
    """The LiveKit room the room's people talk in: its live call's room while a call rings or runs, else its own.
    (The calls app imports nothing of transcription, so its selector is imported at module level, no cycle.)"""
    call = call_live_for_room(room=room)
    return call.livekit_room if call is not None else room.livekit_name


def _live_egresses(*, livekit_room: str, transcription_id: str) -> dict[str, str]:
    """{track sid: egress id} of the session's egresses in `livekit_room` that are starting or streaming."""
    found: dict[str, str] = {}
    for info in gateway.egress_list(room_name=livekit_room, active=True):
        owner = _transcription_of_egress(info)
        if owner is not None and owner[0] == transcription_id and info.status in _EGRESS_LIVE:
            found[owner[1]] = info.egress_id
    return found


def _degrade(transcription_id: str, detail: str) -> None:
    """Mark a session degraded with a reason and tell the room (health changes are events too)."""
    with transaction.atomic():
        session = (
            Transcription.objects.select_for_update(of=("self",))
            .select_related("room", "tenant")
            .filter(pk=transcription_id)
        ).first()
        if session is None or session.status != Transcription.Status.ACTIVE:
            return
        if detail in session.health_detail.splitlines():  # the same news twice (egress_updated, then _ended)
            return
        details = [line for line in session.health_detail.splitlines() if line][-9:]  # the last ten reasons
        session.health = Transcription.Health.DEGRADED
        session.health_detail = "\n".join([*details, detail])
        session.save(update_fields=["health", "health_detail"])
        if session.room is not None:
            event_emit(
                tenant=session.tenant,
                type=HEALTH_EVENT,
                data={
                    "transcriptionId": session.pk,
                    "roomId": session.room.name,
                    "health": session.health,
                    "detail": detail,
                },
                room_key=str(session.room_id),
            )


def _start_egress(*, session: Transcription, livekit_room: str, track_sid: str, identity: str) -> str | None:
    url = ingest_url(transcription_id=session.pk, track_sid=track_sid, identity=identity)
    try:
        info = gateway.egress_start_track(room_name=livekit_room, track_sid=track_sid, websocket_url=url)
    except ProblemError as exc:
        logger.warning("live egress for %s failed: %s", track_sid, exc.detail)
        _degrade(session.pk, f"track {track_sid} ({identity}) is not transcribed: egress failed ({exc.detail})")
        return None
    return info.egress_id


def _audio_tracks(livekit_room: str) -> list[tuple[str, str]]:
    """(track sid, participant identity) of every published audio track in the LiveKit room, per LiveKit."""
    tracks = []
    for participant in gateway.participant_list(livekit_room):
        if participant.kind == lk_models.ParticipantInfo.Kind.EGRESS:
            continue
        for track in participant.tracks:
            if track.type == lk_models.TrackType.AUDIO:
                tracks.append((track.sid, participant.identity))
    return tracks


def _egresses_start(*, session_id: str, livekit_room: str, tracks: list[tuple[str, str]]) -> None:
    """Start an egress in `livekit_room` for each of `tracks` that has none yet. Holds the session's row lock across
    ListEgress and StartEgress (each bounded by LIVEKIT_TIMEOUT): a start and a late `track_published` for the same
    track would otherwise both read "no egress yet" and start two, and every word would be heard twice."""
    with transaction.atomic():
        session = (
            Transcription.objects.select_for_update(of=("self",))
            .filter(pk=session_id, status=Transcription.Status.ACTIVE)
            .first()
        )
        if session is None:
            return
        running = _live_egresses(livekit_room=livekit_room, transcription_id=session.pk) if tracks else {}
        for track_sid, identity in tracks:
            if track_sid not in running:
                _start_egress(session=session, livekit_room=livekit_room, track_sid=track_sid, identity=identity)


# --- Sessions ----------------------------------------------------------------------------------------------


def live_start(
    *,
    tenant: Tenant,
    room_id: str,
    language: str = "en-US",
    participants: dict[str, str] | None = None,
    options: dict[str, bool] | None = None,
) -> tuple[Transcription, bool]:
    """Start live transcription of an open room; (session, created). Idempotent: the active session is returned
    as it is. Egresses for the room's audio tracks are started after commit (they dial back into the ingest
    WebSocket, which only accepts a committed, active session)."""
    _check_available(tenant=tenant)
    with transaction.atomic():
        room = _room_or_404(tenant=tenant, room_id=room_id, lock=True)
        current = live_session_active(room=room)
        if current is not None:
            return current, False
        _check_language(language)
        livekit_room = _media_room(room)
        tracks = _audio_tracks(livekit_room)  # LiveKit errors surface as 502/503 before anything is written
        now = timezone.now()
        session = Transcription.objects.create(
            tenant=tenant,
            mode=Transcription.Mode.LIVE,
            room=room,
            status=Transcription.Status.ACTIVE,
            language=language,
            model=live_model_name(whisper_language_for(language)),
            speaker_map=dict(participants or {}),
            options=dict(options or {}),
            health=Transcription.Health.OK,
            started_at=now,
            created_at=now,
        )
        event_emit(
            tenant=tenant,
            type="transcription.started",
            data={"transcriptionId": session.pk, "roomId": room.name, "language": language},
            room_key=str(room.pk),
        )
        session_id = session.pk
        transaction.on_commit(lambda: _egresses_start(session_id=session_id, livekit_room=livekit_room, tracks=tracks))
    return session, True


def _stop_egresses(*, room: Room, transcription_id: str) -> None:
    # The room's own LiveKit room and its live call's, if any (an ended call's LiveKit room is deleted, which
    # ends the egresses in it).
    running: dict[str, str] = {}
    try:
        for livekit_room in dict.fromkeys([room.livekit_name, _media_room(room)]):
            running.update(_live_egresses(livekit_room=livekit_room, transcription_id=transcription_id))
    except ProblemError as exc:
        logger.warning("could not list live egresses of %s: %s", transcription_id, exc.detail)
        return
    for egress_id in running.values():
        try:
            gateway.egress_stop(egress_id)
        except ProblemError as exc:  # already ended, or LiveKit briefly away: the room's end stops it anyway
            logger.info("stopping live egress %s: %s", egress_id, exc.detail)


def _mark_stopped(session: Transcription, *, reason: str = "stopped") -> None:
    session.status = Transcription.Status.STOPPED
    session.stopped_at = timezone.now()
    session.completed_at = session.stopped_at
    session.save(update_fields=["status", "stopped_at", "completed_at"])
    if session.room is not None:
        event_emit(
            tenant=session.tenant,
            type="transcription.stopped",
            data={
                "transcriptionId": session.pk,
                "roomId": session.room.name,
                "segmentCount": session.segments.count(),
                "reason": reason,
            },
            room_key=str(session.room_id),
        )


def live_stop(*, tenant: Tenant, room_id: str) -> Transcription:
    """Stop the room's active session (or return the last stopped one again). Its egresses are stopped after
    commit; what is still in flight is not stored."""
    with transaction.atomic():
        room = _room_or_404(tenant=tenant, room_id=room_id)
        session = (
            Transcription.objects.select_for_update(of=("self",))
            .filter(room=room, mode=Transcription.Mode.LIVE)
            .order_by("-created_at")
            .first()
        )
        if session is None:
            raise ProblemError(404, "transcription_not_found", f"Room {room_id!r} has no live transcription.")
        if session.status == Transcription.Status.ACTIVE:
            _mark_stopped(session)
            transaction.on_commit(lambda: _stop_egresses(room=room, transcription_id=session.pk))
    return session


def live_stop_for_room(room: Room) -> None:
    """ROOM_CLOSE_HANDLERS: a closed room's session stops (LiveKit ends its egresses with the room)."""
    for session in Transcription.objects.select_for_update().filter(
        room=room, mode=Transcription.Mode.LIVE, status=Transcription.Status.ACTIVE
    ):
        _mark_stopped(session, reason="room_closed")


def live_speakers_update(*, tenant: Tenant, room_id: str, participants: dict[str, str]) -> Transcription:
    """Merge names into the active session's speaker map; segments from now on use them."""
    with transaction.atomic():
        room = _room_or_404(tenant=tenant, room_id=room_id)
        session = (
            Transcription.objects.select_for_update(of=("self",))
            .filter(room=room, mode=Transcription.Mode.LIVE, status=Transcription.Status.ACTIVE)
            .first()
        )
        if session is None:
            raise ProblemError(404, "transcription_not_found", f"Room {room_id!r} has no active live transcription.")
        session.speaker_map = {**session.speaker_map, **participants}
        session.save(update_fields=["speaker_map"])
    return session


def _egress_failed(info: lk_egress.EgressInfo) -> None:
    """One of our ingest egresses failed (could not dial, or broke off): the session says which track is lost."""
    owner = _transcription_of_egress(info)
    if owner is None:
        return
    transcription_id, track_sid = owner
    _degrade(
        transcription_id, f"track {track_sid} is not transcribed: LiveKit egress failed ({info.error or 'no reason'})"
    )


def live_apply_livekit_event(event: lk_webhook.WebhookEvent, record: Any) -> None:
    """LIVEKIT_EVENT_HANDLERS: an audio track published in a room with an active session, or in the LiveKit room
    of that room's live call, gets its egress there (idempotent: a track that already has one, per ListEgress, is
    left alone); a failed ingest egress marks its session degraded."""
    if event.event in ("egress_updated", "egress_ended"):
        if event.egress_info.status == lk_egress.EgressStatus.EGRESS_FAILED:
            _egress_failed(event.egress_info)
        return
    if event.event != "track_published" or event.track.type != lk_models.TrackType.AUDIO:
        return
    if event.participant.kind == lk_models.ParticipantInfo.Kind.EGRESS:
        return
    room = Room.objects.filter(livekit_name=event.room.name, closed_at__isnull=True).first()
    if room is None:
        call = call_live_by_livekit_room(livekit_room=event.room.name)
        room = call.room if call is not None else None
    if room is None:
        return
    session = live_session_active(room=room)
    if session is None:
        return
    _egresses_start(
        session_id=session.pk,
        livekit_room=event.room.name,
        tracks=[(event.track.sid, event.participant.identity)],
    )


# --- What the ingest WebSocket hears ----------------------------------------------------------------------


def live_session_for_ingest(*, transcription_id: str, track_sid: str) -> Transcription | None:
    """The active session a verified ingest token names, with its room; None if it is not active any more."""
    return (
        Transcription.objects.select_related("room", "tenant")
        .filter(pk=transcription_id, mode=Transcription.Mode.LIVE, status=Transcription.Status.ACTIVE)
        .first()
    )


def _speaker(*, session: Transcription, track_sid: str, identity: str) -> str:
    """The session's map (track sid, then identity), then the display name of the participant's token, then the
    identity."""
    for key in (track_sid, identity):
        if key and session.speaker_map.get(key):
            return str(session.speaker_map[key])
    return participant_token_name(room_id=session.room_id, identity=identity) or identity or track_sid


def segment_as_json(segment: TranscriptSegment) -> dict[str, Any]:
    return {
        "index": segment.index,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "speaker": segment.speaker_name or segment.speaker_label,
        "speakerLabel": segment.speaker_label,
        "trackSid": segment.track_sid,
        "confidence": segment.confidence,
        "createdAt": iso_ms(segment.created_at),
    }


def live_segment_store(
    *, transcription_id: str, track_sid: str, identity: str, heard: Heard
) -> TranscriptSegment | None:
    """Store a final segment and emit it to the room (`transcription.segment`, final true). Nothing is stored
    for a session that is no longer active, or for an utterance with no words after the text options."""
    with transaction.atomic():
        session = (
            Transcription.objects.select_for_update(of=("self",))
            .select_related("room", "tenant")
            .filter(pk=transcription_id, status=Transcription.Status.ACTIVE)
            .first()
        )
        if session is None or session.room is None:
            return None
        text = text_apply_options(heard.text, session.options)
        if not text.strip():
            return None
        last = session.segments.aggregate(m=Max("index"))["m"]
        segment = TranscriptSegment.objects.create(
            transcription=session,
            index=0 if last is None else last + 1,
            start=heard.start,
            end=heard.end,
            text=text,
            speaker_label=identity or track_sid,
            speaker_name=_speaker(session=session, track_sid=track_sid, identity=identity),
            confidence=heard.confidence,
            track_sid=track_sid,
        )
        if heard.language and not session.detected_language:
            session.detected_language = heard.language
            session.save(update_fields=["detected_language"])
        event_emit(
            tenant=session.tenant,
            type=SEGMENT_EVENT,
            data={
                "transcriptionId": session.pk,
                "roomId": session.room.name,
                "utteranceId": heard.utterance_id,
                "final": True,
                **segment_as_json(segment),
            },
            room_key=str(session.room_id),
        )
    return segment


def live_partial_frame(*, session: Transcription, track_sid: str, identity: str, heard: Heard) -> dict[str, Any] | None:
    """The `transcription.segment` frame (final false) of a partial result, or None if it has no words.
    Partials are ephemeral: sent to the room's WebSocket group directly, never stored nor sent to webhooks."""
    text = text_apply_options(heard.text, session.options)
    if not text.strip() or session.room is None:
        return None
    now = timezone.now()
    return {
        "type": SEGMENT_EVENT,
        "data": {
            "transcriptionId": session.pk,
            "roomId": session.room.name,
            "utteranceId": heard.utterance_id,
            "final": False,
            "start": heard.start,
            "end": heard.end,
            "text": text,
            "speaker": _speaker(session=session, track_sid=track_sid, identity=identity),
            "speakerLabel": identity or track_sid,
            "trackSid": track_sid,
            "confidence": heard.confidence,
            "createdAt": iso_ms(now),
        },
        "id": f"partial_{heard.utterance_id}_{int(now.timestamp() * 1000)}",
        "ts": now.isoformat(),
    }


def live_dropped(*, transcription_id: str, track_sid: str, identity: str, dropped: Dropped) -> None:
    """The recognizer could not keep up: say so on the session (health degraded, with the reason)."""
    _degrade(
        transcription_id,
        f"{timezone.now().isoformat(timespec='seconds')}: recognizer behind by {dropped.backlog_seconds:.1f} s "
        f"(limit {settings.TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS:g} s); dropped {dropped.seconds:.1f} s of speech "
        f"from track {track_sid} ({identity or 'unknown'})",
    )


def session_clock(session: Transcription, at: datetime | None = None) -> float:
    """Seconds since the session started (the clock segment times are on)."""
    started = session.started_at or session.created_at
    return max(0.0, ((at or timezone.now()) - started).total_seconds())
