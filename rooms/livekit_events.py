"""LiveKit is the truth about who is connected: its webhooks and a periodic reconciliation keep
the Room rows and the participant mirror (RoomParticipant) in step with it.

Webhooks arrive twice, late, out of order or not at all. The mirror stays correct because:
- the intake drops exact duplicates by event id before any handler runs;
- a participant sid is one connection and `left` is terminal for it, so a `participant_joined`
  delivered after its `participant_left` is recognised as stale (the left event leaves a tombstone
  row even when it is the first thing we hear about that sid);
- of two connections of the same identity the newer (LiveKit's joined_at) wins;
- an unpublished track stays as a tombstone, so a late `track_published` does not resurrect it;
- a `room_finished` for the sid we know ends the Room's session (room_session_end: a Room outlives
  its LiveKit room unless it never had a member), and a finished sid is remembered (on the Room, or
  as a closed Room row), so a late `room_started` or `participant_joined` for it does not reopen it;
- `rooms_reconcile` (a beat task) compares every open room with ListRooms/ListParticipants, so a
  dropped webhook costs at most one reconciliation interval.

Rooms of the calls app (`scaiwave-call-...`) are ignored. A name with a tenant's prefix (`<tenant id>--`) is
that tenant's; any other name belongs to the tenant without a prefix, if there is one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from livekit.protocol import ingress as lk_ingress
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from rooms import livekit_gateway as gateway
from rooms.models import Room, RoomParticipant
from rooms.selectors import member_user_ids
from rooms.services import iso_ms, room_session_end
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant

logger = logging.getLogger("scaiwave.rooms.livekit")

CALL_ROOM_PREFIX = "scaiwave-call-"
_TENANT_ROOM = re.compile(r"^(tn_[0-9a-z]+)--(.+)$", re.DOTALL)
_CONNECTED_STATES = (lk_models.ParticipantInfo.State.JOINED, lk_models.ParticipantInfo.State.ACTIVE)

PEOPLE_KIND = lk_models.ParticipantInfo.Kind.Name(lk_models.ParticipantInfo.Kind.STANDARD)
STALE = "stale"  # LiveKitEvent.Outcome.STALE: the event is older than what the mirror knows


def _is_ours(livekit_name: str) -> bool:
    return bool(livekit_name) and not livekit_name.startswith(CALL_ROOM_PREFIX) and _owner(livekit_name) is not None


def _owner(livekit_name: str) -> tuple[Tenant, str] | None:
    """The tenant and roomId of a LiveKit room name: `<tenant id>--<roomId>` for a tenant with that prefix,
    otherwise the name itself for the tenant without a prefix (see Tenant.livekit_room_prefix)."""
    match = _TENANT_ROOM.match(livekit_name)
    if match is not None:
        prefixed = Tenant.objects.filter(livekit_room_prefix=f"{match.group(1)}--").first()
        return (prefixed, match.group(2)) if prefixed is not None else None  # a reserved name: nobody's room
    unprefixed = Tenant.objects.filter(livekit_room_prefix="").first()
    return (unprefixed, livekit_name) if unprefixed is not None else None


def _event_time(event: lk_webhook.WebhookEvent) -> datetime:
    return datetime.fromtimestamp(event.created_at, UTC) if event.created_at else timezone.now()


def _participant_joined_at(info: lk_models.ParticipantInfo, fallback: datetime) -> datetime:
    if info.joined_at_ms:
        return datetime.fromtimestamp(info.joined_at_ms / 1000, UTC)
    if info.joined_at:
        return datetime.fromtimestamp(info.joined_at, UTC)
    return fallback


def _mark_stale(record: Any) -> None:
    if record is not None:
        record.outcome = STALE


# --- Finding (or adopting) the Room of a LiveKit room ---------------------------------------------


def _room_locked(livekit_name: str, *, sid: str, adopt: bool, when: datetime) -> Room | None:
    """The open Room for a LiveKit room name, row-locked. With `adopt`, a LiveKit room that has no
    open Room (joined through a token before anyone created it, or reopened by a late join) gets
    one, unless its sid is one we already saw finish. Needs a transaction."""
    room = Room.objects.select_for_update(no_key=True).filter(livekit_name=livekit_name, closed_at__isnull=True).first()
    if room is not None and sid and sid == room.livekit_finished_sid:
        return None  # that session of the room already finished: the event is late
    if room is not None or not adopt:
        return room
    if sid and Room.objects.filter(livekit_name=livekit_name, livekit_sid=sid).exists():
        return None  # that LiveKit room already finished: the event is late
    owner = _owner(livekit_name)
    if owner is None:
        return None
    tenant, name = owner[0], owner[1][:200]
    try:
        with transaction.atomic():
            room = Room.objects.create(tenant=tenant, name=name, livekit_name=livekit_name, livekit_sid=sid)
            event_emit(
                tenant=tenant,
                type="room_created",
                data={"roomId": room.name, "sid": sid, "createdAt": iso_ms(room.created_at)},
                room_key=str(room.pk),
            )
    except IntegrityError:
        # room_create (or another delivery) inserted it concurrently; we waited on its unique index.
        return (
            Room.objects.select_for_update(no_key=True)
            .filter(livekit_name=livekit_name, closed_at__isnull=True)
            .first()
        )
    return room


def _remember_finished(livekit_name: str, *, sid: str, when: datetime) -> None:
    """A room_finished for a room we never had open: keep its sid as a closed row, so a late
    room_started/participant_joined of that same LiveKit room is not adopted."""
    if not sid:
        return
    if (
        Room.objects.filter(livekit_name=livekit_name)
        .filter(models.Q(livekit_sid=sid) | models.Q(livekit_finished_sid=sid))
        .exists()
    ):
        return
    owner = _owner(livekit_name)
    if owner is not None:
        Room.objects.create(
            tenant=owner[0], name=owner[1][:200], livekit_name=livekit_name, livekit_sid=sid, closed_at=when
        )


# --- Participant mirror --------------------------------------------------------------------------


def _participant_data(room: Room, row: RoomParticipant) -> dict[str, Any]:
    return {
        "roomId": room.name,
        "participantId": row.identity,
        "participantSid": row.sid,
        "name": row.name,
        "kind": row.kind,
    }


def _tracks_of(info: lk_models.ParticipantInfo) -> dict[str, dict[str, Any]]:
    return {
        track.sid: {
            "type": lk_models.TrackType.Name(track.type),
            "source": lk_models.TrackSource.Name(track.source),
            "muted": track.muted,
            "published": True,
        }
        for track in info.tracks
    }


def _announced(row: RoomParticipant) -> bool:
    """Whether a connection's joins and leaves are announced. Document 001's clients expect people in
    `participant_joined`/`participant_left`: egress and ingress (and agents) are mirrored, not announced."""
    return row.kind == PEOPLE_KIND


def _leave(room: Room, row: RoomParticipant, *, when: datetime, reason: str) -> None:
    row.state = RoomParticipant.State.LEFT
    row.left_at = when
    row.left_reason = reason
    row.last_event_at = when
    row.save(update_fields=["state", "left_at", "left_reason", "last_event_at", "updated_at"])
    if not _announced(row):
        return
    event_emit(
        tenant=room.tenant,
        type="participant_left",
        data={**_participant_data(room, row), "reason": reason, "leftAt": iso_ms(when)},
        user_ids=member_user_ids(room=room),
        room_key=str(room.pk),
    )


def _join(room: Room, info: lk_models.ParticipantInfo, *, when: datetime) -> bool:
    """Record a connection as joined. False if that is stale (the sid left already, or a newer
    connection of the identity is known). Needs the room's row lock."""
    joined_at = _participant_joined_at(info, when)
    row = RoomParticipant.objects.filter(room=room, sid=info.sid).first()
    if row is not None:
        return row.state == RoomParticipant.State.JOINED  # a repeat is harmless; a left sid is stale
    others = list(RoomParticipant.objects.filter(room=room, identity=info.identity, state=RoomParticipant.State.JOINED))
    superseded = any(other.joined_at > joined_at for other in others)
    row = RoomParticipant.objects.create(
        room=room,
        sid=info.sid,
        identity=info.identity,
        name=info.name,
        kind=lk_models.ParticipantInfo.Kind.Name(info.kind),
        state=RoomParticipant.State.LEFT if superseded else RoomParticipant.State.JOINED,
        joined_at=joined_at,
        left_at=when if superseded else None,
        left_reason="DUPLICATE_IDENTITY" if superseded else "",
        tracks=_tracks_of(info),
        last_event_at=when,
    )
    if superseded:
        return False
    # LiveKit disconnects an older connection of the same identity when a new one joins.
    for other in others:
        _leave(room, other, when=joined_at, reason="DUPLICATE_IDENTITY")
    if not _announced(row):
        return True
    event_emit(
        tenant=room.tenant,
        type="participant_joined",
        data={**_participant_data(room, row), "joinedAt": iso_ms(joined_at)},
        user_ids=member_user_ids(room=room),
        room_key=str(room.pk),
    )
    return True


def _left(room: Room, info: lk_models.ParticipantInfo, *, when: datetime, reason: str) -> None:
    row = RoomParticipant.objects.filter(room=room, sid=info.sid).first()
    if row is None:
        # We never saw it join (reordered or dropped): a tombstone makes its late join stale.
        RoomParticipant.objects.create(
            room=room,
            sid=info.sid,
            identity=info.identity,
            name=info.name,
            kind=lk_models.ParticipantInfo.Kind.Name(info.kind),
            state=RoomParticipant.State.LEFT,
            joined_at=_participant_joined_at(info, when),
            left_at=when,
            left_reason=reason,
            last_event_at=when,
        )
    elif row.state == RoomParticipant.State.JOINED:
        _leave(room, row, when=when, reason=reason)


def _track_published(room: Room, event: lk_webhook.WebhookEvent, *, when: datetime) -> bool:
    row = RoomParticipant.objects.filter(room=room, sid=event.participant.sid).first()
    track = event.track
    if row is not None:
        known = row.tracks.get(track.sid)
        if row.state != RoomParticipant.State.JOINED or (known is not None and not known.get("published")):
            return False
        row.tracks[track.sid] = {
            "type": lk_models.TrackType.Name(track.type),
            "source": lk_models.TrackSource.Name(track.source),
            "muted": track.muted,
            "published": True,
        }
        row.last_event_at = when
        row.save(update_fields=["tracks", "last_event_at", "updated_at"])
        if known is not None:
            return True  # already announced
    event_emit(
        tenant=room.tenant,
        type="track_published",
        data={
            "roomId": room.name,
            "participantId": event.participant.identity,
            "participantSid": event.participant.sid,
            "trackSid": track.sid,
            "type": lk_models.TrackType.Name(track.type),
            "source": lk_models.TrackSource.Name(track.source),
            "name": track.name,
        },
        user_ids=member_user_ids(room=room),
        room_key=str(room.pk),
    )
    return True


def _track_unpublished(room: Room, event: lk_webhook.WebhookEvent, *, when: datetime) -> None:
    row = RoomParticipant.objects.filter(room=room, sid=event.participant.sid).first()
    if row is None:
        return
    entry = dict(row.tracks.get(event.track.sid) or {})
    entry["published"] = False
    row.tracks[event.track.sid] = entry
    row.last_event_at = when
    row.save(update_fields=["tracks", "last_event_at", "updated_at"])


# --- The handler the intake calls ----------------------------------------------------------------


def room_apply_livekit_event(event: lk_webhook.WebhookEvent, record: Any = None) -> None:
    """LIVEKIT_EVENT_HANDLERS entry: mirror room, participant, track and ingress events of rooms
    that belong to a Room. Idempotent; sets `record.outcome = "stale"` when the event is older
    than the state it would change. Takes the room's row lock."""
    kind = event.event
    if kind in ("ingress_started", "ingress_ended"):
        _apply_ingress(event)
        return
    livekit_name = event.room.name
    if not _is_ours(livekit_name):
        return
    when = _event_time(event)
    sid = event.room.sid
    with transaction.atomic():
        if kind == "room_started":
            room = _room_locked(livekit_name, sid=sid, adopt=True, when=when)
            if room is None:
                _mark_stale(record)
            elif sid and room.livekit_sid != sid:
                room.livekit_sid = sid
                room.save(update_fields=["livekit_sid"])
        elif kind == "room_finished":
            room = _room_locked(livekit_name, sid=sid, adopt=False, when=when)
            if room is None:
                _remember_finished(livekit_name, sid=sid, when=when)
            elif room.livekit_sid and sid and room.livekit_sid != sid:
                _mark_stale(record)  # an older LiveKit room of the same name finished
            else:
                room_session_end(room=room, ended_at=when, sid=sid)
        elif kind in ("participant_joined", "participant_left", "participant_connection_aborted"):
            room = _room_locked(livekit_name, sid=sid, adopt=True, when=when)
            if room is None:
                _mark_stale(record)
                return
            if sid and not room.livekit_sid:
                room.livekit_sid = sid
                room.save(update_fields=["livekit_sid"])
            if kind == "participant_joined":
                if not _join(room, event.participant, when=when):
                    _mark_stale(record)
            else:
                reason = lk_models.DisconnectReason.Name(event.participant.disconnect_reason)
                if kind == "participant_connection_aborted":
                    reason = "CONNECTION_ABORTED" if reason == "UNKNOWN_REASON" else reason
                _left(room, event.participant, when=when, reason=reason)
        elif kind in ("track_published", "track_unpublished"):
            room = _room_locked(livekit_name, sid=sid, adopt=False, when=when)
            if room is None:
                _mark_stale(record)
            elif kind == "track_published":
                if not _track_published(room, event, when=when):
                    _mark_stale(record)
            else:
                _track_unpublished(room, event, when=when)


def _apply_ingress(event: lk_webhook.WebhookEvent) -> None:
    info = event.ingress_info
    livekit_name = info.room_name or event.room.name
    if not _is_ours(livekit_name):
        return
    with transaction.atomic():
        room = Room.objects.filter(livekit_name=livekit_name, closed_at__isnull=True).first()
        if room is None:
            return
        event_emit(
            tenant=room.tenant,
            type="ingress_started" if event.event == "ingress_started" else "ingress_stopped",
            data={
                "roomId": room.name,
                "ingressId": info.ingress_id,
                "participantId": info.participant_identity,
                "status": lk_ingress.IngressState.Status.Name(info.state.status),
                "error": info.state.error,
            },
            user_ids=member_user_ids(room=room),
            room_key=str(room.pk),
        )


# --- Reconciliation ------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    rooms_checked: int = 0
    rooms_closed: int = 0
    rooms_adopted: int = 0
    joined: int = 0
    left: int = 0
    errors: int = 0


def rooms_reconcile() -> ReconcileResult:
    """Bring every open room and its participants in line with LiveKit's ListRooms and
    ListParticipants: ghosts leave, missed joins appear, rooms LiveKit finished are closed, rooms
    LiveKit has (with a tenant prefix) but we do not are adopted. Raises the gateway's errors if
    ListRooms fails; a failure on one room is logged and the others go on."""
    result = ReconcileResult()
    open_rooms = {room.livekit_name: room for room in Room.objects.filter(closed_at__isnull=True)}
    live = {info.name: info for info in gateway.room_list()}
    for livekit_name, info in live.items():
        if livekit_name not in open_rooms and _is_ours(livekit_name):
            with transaction.atomic():
                adopted = _room_locked(livekit_name, sid=info.sid, adopt=True, when=timezone.now())
            if adopted is not None:
                open_rooms[livekit_name] = adopted
                result.rooms_adopted += 1
    for livekit_name, room in open_rooms.items():
        result.rooms_checked += 1
        live_info = live.get(livekit_name)
        try:
            snapshot_at = timezone.now()
            participants = gateway.participant_list(livekit_name) if live_info is not None else []
            joined, left, closed = _reconcile_room(room.pk, live_info, participants, snapshot_at=snapshot_at)
        except gateway.LiveKitError as exc:
            result.errors += 1
            logger.warning("reconcile failed", extra={"room": livekit_name, "error": exc.detail})
            continue
        result.joined += joined
        result.left += left
        result.rooms_closed += int(closed)
        if joined or left or closed:
            # This room's repair is committed (and announced); the rooms after it are not yet reconciled.
            failpoint("rooms.reconcile_livekit.room_repaired")
    return result


def _reconcile_room(
    room_pk: int,
    info: lk_models.Room | None,
    participants: list[lk_models.ParticipantInfo],
    *,
    snapshot_at: datetime,
) -> tuple[int, int, bool]:
    joined = left = 0
    with transaction.atomic():
        room = Room.objects.select_for_update(no_key=True).filter(pk=room_pk, closed_at__isnull=True).first()
        if room is None:
            return 0, 0, False
        if info is None:
            if room.livekit_sid:
                # LiveKit had this room and no longer has it: its room_finished was lost.
                return 0, 0, room_session_end(room=room, ended_at=snapshot_at)
            return 0, 0, False  # created lazily (a token) and nobody has joined yet, or between sessions
        if info.sid and info.sid != room.livekit_sid:
            room.livekit_sid = info.sid
            room.save(update_fields=["livekit_sid"])
        live = {p.sid: p for p in participants if p.state in _CONNECTED_STATES}
        for row in RoomParticipant.objects.filter(room=room, state=RoomParticipant.State.JOINED):
            if row.sid not in live and row.updated_at <= snapshot_at:
                _leave(room, row, when=snapshot_at, reason="RECONCILED")
                left += 1
        for sid, participant in live.items():
            existing = RoomParticipant.objects.filter(room=room, sid=sid).first()
            if existing is None:
                if _join(room, participant, when=snapshot_at):
                    joined += 1
            elif existing.state == RoomParticipant.State.JOINED:
                existing.tracks = {
                    **{k: {**v, "published": False} for k, v in existing.tracks.items()},
                    **_tracks_of(participant),
                }
                existing.save(update_fields=["tracks", "updated_at"])
            elif (
                existing.left_at is not None and existing.left_at < snapshot_at and existing.left_reason == "RECONCILED"
            ):
                # We closed it on an earlier pass but LiveKit still lists it: it is there.
                existing.state, existing.left_at, existing.left_reason = RoomParticipant.State.JOINED, None, ""
                existing.save(update_fields=["state", "left_at", "left_reason", "updated_at"])
                joined += 1
    return joined, left, False
