"""Writes of the calls app: ring, join, leave, reject, end, expire, and LiveKit's view of a call.

Every function that changes a call runs in one transaction holding the Call row's lock
(`select_for_update`), so concurrent joins, leaves, ends, webhooks and the ring time-out are
applied one after the other and always see the latest status. Status changes go through
`Call.transition_to`; events are written to the outbox in the same transaction.

API calls are intentions; LiveKit's webhooks are the truth about who is connected:
`call_join` hands out a token, `participant_joined` marks the participant joined and moves
a ringing call to active.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from calls import errors
from calls.models import Call, CallParticipant, TimelineEntry
from rooms import livekit_gateway
from rooms.models import Room, RoomMember
from rooms.selectors import member_get, member_user_ids
from rooms.services import iso_ms
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant, TenantUser

logger = logging.getLogger("scaiwave.calls")

CALL_ROOM_PREFIX = "scaiwave-call-"


@dataclass(frozen=True)
class CallTicket:
    """What a caller needs to connect to LiveKit for a call."""

    call: Call
    livekit_url: str
    livekit_token: str
    livekit_room: str
    expires_at: datetime


# --- Timeline ------------------------------------------------------------------------------------


def timeline_post(*, room: Room, kind: str, data: dict[str, Any], call: Call | None = None) -> TimelineEntry:
    """Post an entry to a room's timeline (missed calls, transcripts, ...). Call inside the caller's transaction."""
    return TimelineEntry.objects.create(tenant_id=room.tenant_id, room=room, kind=kind, data=data, call=call)


# --- Helpers -------------------------------------------------------------------------------------


def _lock_call(*, tenant: Tenant, call_id: str) -> Call:
    """The tenant's call, row-locked until the transaction ends. Raises SW_CALL_NOT_FOUND.

    `of=("self",)`: PostgreSQL would otherwise also lock the joined room, user and tenant rows, which would
    serialize every call of a tenant behind one another.
    """
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("room", "initiator", "tenant")
        .filter(tenant=tenant, pk=call_id)
        .first()
    )
    if call is None:
        raise errors.call_not_found()
    return call


def _require_live(call: Call) -> None:
    if not call.is_live:
        raise errors.call_ended(call.status)


def _require_member(call: Call, user: TenantUser) -> RoomMember:
    member = member_get(room=call.room, user=user)
    if member is None:
        raise errors.forbidden("You are not a member of this call's room.")
    return member


def _participants(call: Call) -> list[CallParticipant]:
    return list(CallParticipant.objects.filter(call=call).select_related("user").order_by("id"))


def _user_ids(participants: Iterable[CallParticipant]) -> list[int]:
    return [p.user_id for p in participants]


def _base(call: Call) -> dict[str, Any]:
    return {"call_id": call.pk, "room_id": call.room.name}


def _emit(call: Call, type_: str, data: dict[str, Any], user_ids: Iterable[int]) -> None:
    recipients = sorted(set(user_ids))
    if recipients:
        event_emit(tenant=call.tenant, type=type_, data={**_base(call), **data}, user_ids=recipients)


def _mint(call: Call, user: TenantUser) -> livekit_gateway.MintedToken:
    try:
        return livekit_gateway.mint_token(
            room_name=call.livekit_room, identity=user.external_id, name=user.display_name, role="participant"
        )
    except livekit_gateway.LiveKitError as exc:
        raise errors.livekit_unreachable(exc.detail) from None


def _ticket(call: Call, minted: livekit_gateway.MintedToken) -> CallTicket:
    from django.conf import settings

    return CallTicket(
        call=call,
        livekit_url=settings.LIVEKIT_PUBLIC_URL,
        livekit_token=minted.token,
        livekit_room=call.livekit_room,
        expires_at=minted.expires_at,
    )


def _delete_livekit_room_after_commit(name: str) -> None:
    """Close the call's LiveKit room once the end is committed. LiveKit also closes an empty room on
    its own, so an unreachable LiveKit here is logged, not fatal."""

    def delete() -> None:
        try:
            livekit_gateway.room_delete(name)
        except livekit_gateway.LiveKitNotFound:
            pass
        except livekit_gateway.LiveKitError as exc:
            logger.warning("could not delete the call's LiveKit room", extra={"room": name, "error": exc.detail})

    transaction.on_commit(delete)


def _remove_from_livekit_after_commit(room_name: str, identity: str) -> None:
    def remove() -> None:
        # Not connected (any more), or LiveKit away: its webhook tells us the truth either way.
        with contextlib.suppress(livekit_gateway.LiveKitError):
            livekit_gateway.participant_remove(room_name, identity)

    transaction.on_commit(remove)


def _mark_left(participant: CallParticipant, *, reason: str, at: datetime) -> None:
    participant.left_at = at
    participant.leave_reason = reason
    participant.tracks = {}
    participant.refresh_media_flags()
    participant.save(update_fields=["left_at", "leave_reason", "tracks", "audio_on", "video_on", "last_event_at"])


_RING_CANCEL_REASON: dict[str, str] = {
    Call.Status.CANCELLED: "cancelled",
    Call.Status.MISSED: "timeout",
    Call.Status.REJECTED: "rejected",
    Call.Status.FAILED: "failed",
}


def _finish(call: Call, target: str, *, reason: str, by: TenantUser | None = None) -> None:
    """Move a live call to a terminal status, disconnect everyone, tell everyone. Needs the call's lock."""
    was_ringing = call.status == Call.Status.RINGING
    now = timezone.now()
    call.transition_to(target, reason=reason, at=now)
    call.save(update_fields=["status", "ended_at", "end_reason", "failure_reason"])
    participants = _participants(call)
    for participant in participants:
        if participant.is_connected:
            _mark_left(participant, reason="call_ended", at=now)
    callees = [p for p in participants if p.user_id != call.initiator_id]
    unanswered = [p for p in callees if p.rejected_at is None and p.joined_at is None]
    if was_ringing:
        _emit(
            call,
            "swp.call.ringing_cancelled",
            {"reason": _RING_CANCEL_REASON.get(target, target)},
            _user_ids(unanswered),
        )
    if target == Call.Status.MISSED:
        missed = {"type": call.type, "initiator_id": call.initiator.external_id}
        _emit(call, "swp.call.missed", missed, _user_ids(unanswered))
    ended = {"status": call.status, "reason": reason, "ended_at": iso_ms(now)}
    if by is not None:
        ended["ended_by"] = by.external_id
    _emit(call, "swp.call.ended", ended, _user_ids(participants))
    if target in (Call.Status.MISSED, Call.Status.REJECTED):
        kind = TimelineEntry.Kind.MISSED_CALL if target == Call.Status.MISSED else TimelineEntry.Kind.REJECTED_CALL
        timeline_post(
            room=call.room,
            kind=kind,
            call=call,
            data={
                "call_id": call.pk,
                "type": call.type,
                "initiator_id": call.initiator.external_id,
                "callee_ids": [p.user.external_id for p in callees],
                "rejected_by": [p.user.external_id for p in callees if p.rejected_at is not None],
            },
        )
    _stop_recordings_after_commit(call)
    _delete_livekit_room_after_commit(call.livekit_room)


def _stop_recordings_after_commit(call: Call) -> None:
    """Stop the call's recordings once the end is committed (before its LiveKit room is deleted), outside
    the call's lock: stopping egress is a LiveKit round trip."""
    # Imported here: recordings' models refer to calls' models.
    from recordings.services import recordings_stop_for_call

    call_id = call.pk
    transaction.on_commit(lambda: recordings_stop_for_call(Call.objects.get(pk=call_id)))


# --- Initiate, join, leave, reject, end ---------------------------------------------------------


def call_initiate(*, tenant: Tenant, user: TenantUser, room_name: str, type: str) -> CallTicket:
    """Start ringing every other member of the room and return the initiator's LiveKit ticket.

    Locks the Room row so two initiates in one room are serialized (the partial unique
    constraint is the backstop). Raises SW_CALL_ROOM_NOT_FOUND, SW_CALL_FORBIDDEN,
    SW_CALL_ALREADY_ACTIVE (409, with the live call's id) and SW_CALL_LIVEKIT_UNREACHABLE (502;
    the call is then kept as `failed` with the reason).
    """
    failure: livekit_gateway.LiveKitError | None = None
    with transaction.atomic():
        # The room lock is held across CreateRoom (bounded by LIVEKIT_TIMEOUT): a second initiate in the
        # same room waits and then sees this call, instead of racing it to LiveKit.
        room = (
            Room.objects.select_for_update(no_key=True)
            .filter(tenant=tenant, name=room_name, closed_at__isnull=True)
            .first()
        )
        if room is None:
            raise errors.room_not_found()
        if member_get(room=room, user=user) is None:
            raise errors.forbidden("You are not a member of this room.")
        live = Call.objects.filter(room=room, status__in=Call.LIVE_STATUSES).values_list("pk", flat=True).first()
        if live is not None:
            raise errors.already_active(live)
        now = timezone.now()
        call = Call.objects.create(
            tenant=tenant,
            room=room,
            type=type,
            initiator=user,
            created_at=now,
            ring_expires_at=now + timedelta(seconds=tenant.ring_timeout_seconds),
        )
        callee_ids = [pk for pk in member_user_ids(room=room) if pk != user.pk]
        CallParticipant.objects.bulk_create(
            [CallParticipant(call=call, user=user, invited_at=now, token_issued_at=now)]
            + [CallParticipant(call=call, user_id=pk, invited_at=now) for pk in callee_ids]
        )
        try:
            livekit_gateway.room_create(
                name=call.livekit_room,
                max_participants=tenant.max_participants_per_call,
                metadata=json.dumps({"call_id": call.pk, "room_id": room.name}),
            )
            minted = livekit_gateway.mint_token(
                room_name=call.livekit_room, identity=user.external_id, name=user.display_name
            )
        except livekit_gateway.LiveKitError as exc:
            failure = exc
            call.transition_to(Call.Status.FAILED, reason=f"livekit: {exc.detail}")
            call.save(update_fields=["status", "ended_at", "end_reason", "failure_reason"])
        else:
            invite = {
                "type": call.type,
                "initiator_id": user.external_id,
                "initiator_name": user.display_name,
                "livekit_room": call.livekit_room,
                "expires_at": iso_ms(call.ring_expires_at),
            }
            _emit(call, "swp.call.invite", invite, callee_ids)
    if failure is not None:
        raise errors.livekit_unreachable(failure.detail)
    return _ticket(call, minted)


def call_join(*, tenant: Tenant, user: TenantUser, call_id: str) -> CallTicket:
    """A token for this caller. The participant counts as joined only when LiveKit says it connected.

    Raises SW_CALL_NOT_FOUND, SW_CALL_ENDED, SW_CALL_FORBIDDEN (not a room member).
    """
    with transaction.atomic():
        call = _lock_call(tenant=tenant, call_id=call_id)
        _require_live(call)
        _require_member(call, user)
        now = timezone.now()
        participant, created = CallParticipant.objects.get_or_create(
            call=call, user=user, defaults={"invited_at": now, "token_issued_at": now}
        )
        if not created:
            participant.token_issued_at = now
            participant.rejected_at = None
            participant.save(update_fields=["token_issued_at", "rejected_at"])
        minted = _mint(call, user)
    return _ticket(call, minted)


def call_leave(*, tenant: Tenant, user: TenantUser, call_id: str) -> Call:
    """The caller leaves. Before anyone answered, the initiator leaving cancels the call and a
    callee leaving declines it; once active, the last connected participant leaving ends it.

    Raises SW_CALL_NOT_FOUND, SW_CALL_ENDED, SW_CALL_FORBIDDEN (not part of the call).
    """
    with transaction.atomic():
        call = _lock_call(tenant=tenant, call_id=call_id)
        _require_live(call)
        participant = CallParticipant.objects.filter(call=call, user=user).first()
        if participant is None:
            raise errors.forbidden("You are not part of this call.")
        if call.status == Call.Status.RINGING and user.pk == call.initiator_id:
            _finish(call, Call.Status.CANCELLED, reason="initiator_left", by=user)
            return call
        if call.status == Call.Status.RINGING and not participant.is_connected:
            _reject(call, participant)
            return call
        _participant_gone(call, participant, reason="left", at=timezone.now())
        _remove_from_livekit_after_commit(call.livekit_room, user.external_id)
    return call


def _participant_gone(call: Call, participant: CallParticipant, *, reason: str, at: datetime) -> None:
    """Record a leave and apply its consequences to the call. Needs the call's lock."""
    was_connected = participant.is_connected
    if participant.left_at is None:
        _mark_left(participant, reason=reason, at=at)
    if was_connected:
        _emit(
            call,
            "swp.call.participant_left",
            {"participant_id": participant.user.external_id, "reason": reason},
            _user_ids(_participants(call)),
        )
    if call.status == Call.Status.RINGING and participant.user_id == call.initiator_id:
        _finish(call, Call.Status.CANCELLED, reason="initiator_left")
    elif call.status == Call.Status.ACTIVE and not any(p.is_connected for p in _participants(call)):
        _finish(call, Call.Status.ENDED, reason="last_participant_left")


def call_reject(*, tenant: Tenant, user: TenantUser, call_id: str) -> Call:
    """Decline the call. When every callee has declined a ringing call, it is `rejected`.

    Raises SW_CALL_NOT_FOUND, SW_CALL_ENDED, SW_CALL_FORBIDDEN (not a member, or the initiator).
    """
    with transaction.atomic():
        call = _lock_call(tenant=tenant, call_id=call_id)
        _require_live(call)
        _require_member(call, user)
        if user.pk == call.initiator_id:
            raise errors.forbidden("The initiator cannot reject their own call; leave or end it instead.")
        participant, _ = CallParticipant.objects.get_or_create(call=call, user=user)
        _reject(call, participant)
    return call


def _reject(call: Call, participant: CallParticipant) -> None:
    if participant.rejected_at is None:
        participant.rejected_at = timezone.now()
        participant.save(update_fields=["rejected_at"])
    # The user's other devices stop ringing.
    _emit(call, "swp.call.ringing_cancelled", {"reason": "rejected_here"}, [participant.user_id])
    if call.status != Call.Status.RINGING:
        return
    callees = [p for p in _participants(call) if p.user_id != call.initiator_id]
    if callees and all(p.rejected_at is not None for p in callees):
        _finish(call, Call.Status.REJECTED, reason="rejected")


def call_end(*, tenant: Tenant, user: TenantUser, call_id: str) -> Call:
    """End the call for everyone: the initiator, or a room member with power >= 50.
    A ringing call becomes `cancelled`, an active one `ended`.

    Raises SW_CALL_NOT_FOUND, SW_CALL_ENDED, SW_CALL_FORBIDDEN.
    """
    with transaction.atomic():
        call = _lock_call(tenant=tenant, call_id=call_id)
        _require_live(call)
        member = _require_member(call, user)
        if user.pk != call.initiator_id and member.power_level < RoomMember.ADMIN_POWER:
            raise errors.forbidden(f"Only the initiator or a member with power >= {RoomMember.ADMIN_POWER} may end it.")
        if call.status == Call.Status.RINGING:
            _finish(call, Call.Status.CANCELLED, reason="cancelled", by=user)
        else:
            _finish(call, Call.Status.ENDED, reason="ended_by_user", by=user)
    return call


def _lock_live_call_for_operator(call_id: str) -> Call | None:
    """The call, locked (its row only), if it is still live; operators act across tenants. Needs a transaction."""
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("room", "initiator", "tenant")
        .filter(pk=call_id)
        .first()
    )
    return call if call is not None and call.is_live else None


def call_end_by_operator(*, call_id: str) -> bool:
    """An operator (admin) ends a live call. Returns False if it was no longer live."""
    with transaction.atomic():
        call = _lock_live_call_for_operator(call_id)
        if call is None:
            return False
        target = Call.Status.CANCELLED if call.status == Call.Status.RINGING else Call.Status.ENDED
        _finish(call, target, reason="ended_by_operator")
    return True


def call_participant_remove_by_operator(*, call_id: str, user_id: int) -> bool:
    """An operator removes one connected participant from a live call: the leave is recorded with
    reason `removed_by_operator` (ending the call if they were the last one) and LiveKit disconnects
    them after commit. Returns False when the call is over or they were not connected. Takes the
    call's lock."""
    with transaction.atomic():
        call = _lock_live_call_for_operator(call_id)
        if call is None:
            return False
        participant = CallParticipant.objects.select_related("user").filter(call=call, user_id=user_id).first()
        if participant is None or not participant.is_connected:
            return False
        _participant_gone(call, participant, reason="removed_by_operator", at=timezone.now())
        _remove_from_livekit_after_commit(
            call.livekit_room, participant.livekit_identity or participant.user.external_id
        )
    return True


def call_expire_ringing(*, now: datetime | None = None) -> int:
    """Turn every call still ringing at its `ring_expires_at` into `missed`. Returns how many.

    Each call is claimed with `skip_locked`, so a join or end in flight on it wins this round and
    two beats never expire the same call twice; the status is re-checked under the lock.
    """
    cutoff = now or timezone.now()
    due = list(
        Call.objects.filter(status=Call.Status.RINGING, ring_expires_at__lte=cutoff).values_list("pk", flat=True)[:500]
    )
    expired = 0
    for call_id in due:
        with transaction.atomic():
            call = (
                Call.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("room", "initiator", "tenant")
                .filter(pk=call_id, status=Call.Status.RINGING, ring_expires_at__lte=cutoff)
                .first()
            )
            if call is None:
                continue
            _finish(call, Call.Status.MISSED, reason="ring_timeout")
            expired += 1
        # This call is missed and committed (events, timeline entry); the calls after it still ring.
        failpoint("calls.expire_ringing.expired")
    return expired


def calls_end_for_room(room: Room) -> None:
    """ROOM_CLOSE_HANDLERS entry: a closed room ends its live calls."""
    for call_id in Call.objects.filter(room=room, status__in=Call.LIVE_STATUSES).values_list("pk", flat=True):
        with transaction.atomic():
            call = (
                Call.objects.select_for_update(of=("self",))
                .select_related("room", "initiator", "tenant")
                .filter(pk=call_id)
                .first()
            )
            if call is None or not call.is_live:
                continue
            target = Call.Status.CANCELLED if call.status == Call.Status.RINGING else Call.Status.ENDED
            _finish(call, target, reason="room_closed")


# --- LiveKit's view -------------------------------------------------------------------------------

_TRACK_KINDS = {lk_models.TrackType.AUDIO: "audio", lk_models.TrackType.VIDEO: "video"}


def call_apply_livekit_event(event: lk_webhook.WebhookEvent, record: Any = None) -> None:
    """LIVEKIT_EVENT_HANDLERS entry for rooms named `scaiwave-call-…`; other rooms are ignored.

    Idempotent: re-applying an event changes nothing, and an event older than the last one applied
    to a participant (LiveKit's createdAt) is ignored.
    """
    room_name = event.room.name
    if not room_name.startswith(CALL_ROOM_PREFIX):
        return
    at = datetime.fromtimestamp(event.created_at, tz=UTC) if event.created_at else timezone.now()
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(of=("self",))
            .select_related("room", "initiator", "tenant")
            .filter(livekit_room=room_name)
            .first()
        )
        if call is None or not call.is_live:
            return
        if event.event == "room_finished":
            target = Call.Status.CANCELLED if call.status == Call.Status.RINGING else Call.Status.ENDED
            _finish(call, target, reason="livekit_room_finished")
            return
        identity = event.participant.identity
        if not identity or event.participant.kind != lk_models.ParticipantInfo.STANDARD:
            return
        user = TenantUser.objects.filter(tenant=call.tenant, external_id=identity).first()
        if user is None:
            return  # not one of ours (an egress or agent participant)
        participant, _ = CallParticipant.objects.select_related("user").get_or_create(call=call, user=user)
        if participant.last_event_at is not None and at < participant.last_event_at:
            if record is not None:
                record.outcome = "stale"  # a late delivery of something already superseded
            return
        participant.last_event_at = at
        if event.event == "participant_joined":
            _participant_connected(call, participant, sid=event.participant.sid, identity=identity, at=at)
        elif event.event in ("participant_left", "participant_connection_aborted"):
            participant.livekit_sid = event.participant.sid or participant.livekit_sid
            reason = "connection_aborted" if event.event == "participant_connection_aborted" else "disconnected"
            if event.participant.disconnect_reason:
                reason = lk_models.DisconnectReason.Name(event.participant.disconnect_reason).lower()
            if participant.left_at is None and participant.joined_at is not None:
                _participant_gone(call, participant, reason=reason, at=at)
            else:
                participant.save(update_fields=["last_event_at", "livekit_sid"])
        elif event.event in ("track_published", "track_unpublished", "track_muted", "track_unmuted"):
            _apply_track(participant, event)


def call_media_refresh(*, call: Call) -> bool:
    """Bring the connected participants' `audio_on`/`video_on` up to date with LiveKit's tracks. Returns True
    when a row changed.

    LiveKit sends no webhook when a client mutes or unmutes its own track (only track_published/unpublished),
    so a live call's state asks LiveKit (ListParticipants, bounded by LIVEKIT_TIMEOUT). Best effort: when
    LiveKit cannot answer, the flags the webhooks last set stand. Takes the Call row lock for the write only,
    never across the LiveKit call.
    """
    if not call.is_live or not any(p.is_connected for p in call.participants.all()):
        return False
    if not livekit_gateway.is_configured():
        return False
    try:
        infos = livekit_gateway.participant_list(call.livekit_room)
    except livekit_gateway.LiveKitError as exc:
        logger.warning("could not read tracks from livekit", extra={"call_id": call.pk, "error": str(exc)})
        return False
    tracks_by_identity = {
        info.identity: {
            track.sid: {"type": _TRACK_KINDS[track.type], "muted": bool(track.muted)}
            for track in info.tracks
            if track.type in _TRACK_KINDS
        }
        for info in infos
    }
    with transaction.atomic():
        locked = Call.objects.select_for_update().filter(pk=call.pk, status__in=Call.LIVE_STATUSES).first()
        if locked is None:
            return False
        changed = []
        for participant in CallParticipant.objects.select_related("user").filter(
            call=locked, joined_at__isnull=False, left_at__isnull=True
        ):
            tracks = tracks_by_identity.get(participant.livekit_identity or participant.user.external_id)
            if tracks is None or tracks == participant.tracks:
                continue  # not in the room (its participant_left webhook settles it) or nothing new
            participant.tracks = tracks
            participant.refresh_media_flags()
            changed.append(participant)
        CallParticipant.objects.bulk_update(changed, ["tracks", "audio_on", "video_on"])
    return bool(changed)


def _participant_connected(call: Call, participant: CallParticipant, *, sid: str, identity: str, at: datetime) -> None:
    already = participant.is_connected and participant.livekit_sid == sid
    participant.joined_at = at if not participant.is_connected else participant.joined_at
    participant.left_at = None
    participant.leave_reason = ""
    participant.livekit_sid = sid
    participant.livekit_identity = identity
    participant.save(
        update_fields=["joined_at", "left_at", "leave_reason", "livekit_sid", "livekit_identity", "last_event_at"]
    )
    if already:
        return
    everyone = _participants(call)
    _emit(call, "swp.call.participant_joined", {"participant_id": identity}, _user_ids(everyone))
    if call.status == Call.Status.RINGING and participant.user_id != call.initiator_id:
        call.transition_to(Call.Status.ACTIVE, at=at)
        call.save(update_fields=["status", "started_at"])
        # Answered: the ring stops for everyone who has not picked up (incl. the answerer's other devices).
        waiting = [p for p in everyone if p.user_id != call.initiator_id and not p.is_connected]
        _emit(
            call,
            "swp.call.ringing_cancelled",
            {"reason": "answered", "answered_by": identity},
            [
                *_user_ids(waiting),
                participant.user_id,
            ],
        )


def _apply_track(participant: CallParticipant, event: lk_webhook.WebhookEvent) -> None:
    track = event.track
    tracks = dict(participant.tracks)
    if event.event == "track_unpublished":
        tracks.pop(track.sid, None)
    else:
        kind = _TRACK_KINDS.get(track.type)
        if kind is None:
            return
        muted = track.muted if event.event == "track_published" else event.event == "track_muted"
        tracks[track.sid] = {"type": kind, "muted": bool(muted)}
    participant.tracks = tracks
    participant.refresh_media_flags()
    participant.save(update_fields=["tracks", "audio_on", "video_on", "last_event_at"])
