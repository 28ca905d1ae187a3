"""Writes of scheduled live calls (document 003, "Loop Live"): create, start, end, delete, tokens, the
scheduled-start beat, and what the rest of the core tells us (room closed, recording ready).

A live call runs on the same core as every call. `live_call_create` opens a Room of its own
(`live-<uuid>`, the host its only member at power 100) and creates its LiveKit room, whose name is
the API's `stream_call_id`. Going live creates a Call in that room (video, status `active`, the host as
initiator, carried by the room's own LiveKit room) and a Recording of that call through the recordings
services. The host's LiveKit token has the `host` role (publishes); everyone else gets `viewer` grants
(subscribe only), so LiveKit itself refuses an audience member's publish.

Locks. Every change takes, in this order, the Room row, the Call row (once there is one) and the LiveCall
row: the same order as `room_close` (room, then ROOM_CLOSE_HANDLERS: calls lock their Call, then
`live_calls_close_for_room` locks the LiveCall), so a room_finished webhook racing an end never deadlocks.

LiveKit errors are reported the way document 003 names them: 502 `provider_error` and 503
`provider_not_configured`, both carrying `error` and `message`.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from livekit.protocol import models as lk_models

from calls.models import Call, CallParticipant, LiveCall
from rooms import livekit_gateway
from rooms.models import Room
from rooms.selectors import participants_connected
from rooms.services import member_set, room_create, room_delete
from scaiwave.api.errors import ProblemError
from scaiwave.audit import SYSTEM, deletion_logged, user_actor
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant, TenantUser

logger = logging.getLogger("scaiwave.calls.live")

ROOM_NAME_PREFIX = "live-"
HOST_POWER = 100
# LiveKit's empty_timeout is a uint32 of seconds.
_MAX_EMPTY_TIMEOUT = 2**32 - 1
_CONNECTED = (lk_models.ParticipantInfo.State.JOINED, lk_models.ParticipantInfo.State.ACTIVE)


# --- Errors ---------------------------------------------------------------------------------------


def live_call_not_found() -> ProblemError:
    return ProblemError(404, "live_call_not_found", "No such live call.")


def live_call_forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", detail)


def live_call_conflict(call: LiveCall, detail: str) -> ProblemError:
    return ProblemError(409, "live_call_state_conflict", detail, call_status=call.status)


def provider_not_configured() -> ProblemError:
    return ProblemError(
        503,
        "provider_not_configured",
        "No streaming provider is configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET "
        "(or enable the built-in LiveKit emulator).",
    )


def provider_error(exc: ProblemError) -> ProblemError:
    """Document 003's 502 (or 503 when LiveKit is not configured) for a gateway failure."""
    if isinstance(exc, livekit_gateway.LiveKitNotConfigured):
        return provider_not_configured()
    return ProblemError(502, "provider_error", f"The streaming provider (LiveKit) failed: {exc.detail}")


def _require_provider() -> None:
    if not livekit_gateway.is_configured():
        raise provider_not_configured()


# --- Helpers --------------------------------------------------------------------------------------


def _room_lifetime(due_at: datetime, *, now: datetime) -> int:
    """How long LiveKit should keep the empty room: until the start grace of its due time has passed.
    LiveKit then closes it, and the room_finished it reports errors a call that never started."""
    seconds = int((due_at - now).total_seconds()) + settings.LIVE_CALL_START_GRACE
    return max(60, min(_MAX_EMPTY_TIMEOUT, seconds))


def _lock(*, live_call_id: uuid.UUID | str, tenant: Tenant | None = None) -> LiveCall:
    """The live call with its Room, Call and LiveCall rows locked in that order (see the module docstring).

    Raises 404 live_call_not_found (also for another tenant's call). Needs a transaction.
    """
    rows = LiveCall.objects.filter(pk=live_call_id)
    if tenant is not None:
        rows = rows.filter(tenant=tenant)
    found = rows.values_list("room_id", "call_id").first()
    if found is None:
        raise live_call_not_found()
    room_id, call_id = found
    Room.objects.select_for_update(no_key=True).filter(pk=room_id).first()
    if call_id is not None:
        Call.objects.select_for_update(of=("self",)).filter(pk=call_id).first()
    live = (
        LiveCall.objects.select_for_update(of=("self",))
        .select_related("room", "host", "tenant", "call")
        .filter(pk=live_call_id)
        .first()
    )
    if live is None:
        raise live_call_not_found()
    return live


def _require_host(live: LiveCall, by: TenantUser | None, action: str) -> None:
    """`by` None is the tenant's server key (or the beat): allowed."""
    if by is not None and by.pk != live.host_id:
        raise live_call_forbidden(f"Only the host may {action} this live call.")


def _emit(live: LiveCall, type_: str, **extra: Any) -> None:
    event_emit(
        tenant=live.tenant,
        type=type_,
        data={
            "id": str(live.pk),
            "status": live.status,
            "stream_call_id": live.stream_call_id,
            "error_reason": live.error_reason or None,
            **extra,
        },
        user_ids=[live.host_id],
    )


def _save(live: LiveCall) -> None:
    live.save(update_fields=["status", "started_at", "ended_at", "error_reason", "call", "recording", "updated_at"])


# --- Create ---------------------------------------------------------------------------------------


def live_call_create(
    *,
    tenant: Tenant,
    host: TenantUser,
    title: str,
    scheduled_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> LiveCall:
    """Schedule a live call: its Room and LiveKit room now, the stream when the host starts it.

    The LiveKit room is created with an empty time-out that lasts until the start grace of its due time,
    so LiveKit keeps it for the host to connect early. Raises 503 provider_not_configured and 502
    provider_error; nothing is written then.
    """
    _require_provider()
    live_call_id = uuid.uuid4()
    # If a write after CreateRoom fails, the LiveKit room is left to its empty time-out (it has no one in it).
    now = timezone.now()
    try:
        with transaction.atomic():
            room = room_create(
                tenant=tenant,
                name=f"{ROOM_NAME_PREFIX}{live_call_id}",
                empty_timeout=_room_lifetime(scheduled_at or now, now=now),
                metadata=json.dumps({"live_call_id": str(live_call_id), "title": title}),
                closes_with_livekit_room=True,  # the live call is its LiveKit room's one session
            )
            member_set(room=room, external_id=host.external_id, power_level=HOST_POWER, name=host.display_name)
            live = LiveCall.objects.create(
                id=live_call_id,
                tenant=tenant,
                host=host,
                title=title,
                scheduled_at=scheduled_at,
                metadata=metadata or {},
                room=room,
                stream_call_id=room.livekit_name,
                created_at=now,
            )
            _emit(live, "live_call.scheduled")
    except livekit_gateway.LiveKitError as exc:
        raise provider_error(exc) from None
    return live


# --- Start ----------------------------------------------------------------------------------------


def live_call_start(*, tenant: Tenant, live_call_id: uuid.UUID | str, by: TenantUser | None) -> LiveCall:
    """Go live: (re)create the LiveKit room, open the Call, start its Recording; status `live`.

    `by` is the host (others get 403); None is the scheduled-start beat. Raises 404, 409
    live_call_state_conflict (not scheduled), 503 provider_not_configured (nothing changes), and
    502 provider_error when LiveKit fails: the live call is then kept as `errored` with the reason.
    A tenant with recordings disabled goes live without a recording.
    """
    failure: ProblemError | None = None
    with transaction.atomic():
        live = _lock(live_call_id=live_call_id, tenant=tenant)
        _require_host(live, by, "start")
        if live.status != LiveCall.Status.SCHEDULED:
            raise live_call_conflict(live, f"Only a scheduled live call can start; this one is {live.status}.")
        _require_provider()
        try:
            # A savepoint: a LiveKit failure undoes the Call and Recording rows, not the errored status.
            with transaction.atomic():
                _go_live(live)
        except (livekit_gateway.LiveKitError, _RecordingRefused) as exc:
            if isinstance(exc, livekit_gateway.LiveKitNotConfigured):
                raise provider_not_configured() from None
            failure = exc.problem if isinstance(exc, _RecordingRefused) else exc
            live.call = None
            live.recording = None
            live.transition_to(LiveCall.Status.ERRORED, reason=f"LiveKit failed at start: {failure.detail}")
            _save(live)
            _emit(live, "live_call.errored")
            # Nothing will stream here any more; if LiveKit is away, its empty time-out closes the room.
            _close_room_after_commit(live.room_id)
    if failure is not None:
        raise provider_error(failure)
    return live


class _RecordingRefused(Exception):
    """recording_start said no for a reason other than a LiveKit error (e.g. the LiveKit room vanished)."""

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def _go_live(live: LiveCall) -> None:
    """Needs the live call's locks (see `_lock`)."""
    from recordings.services import RecordingsDisabled, recording_start

    now = timezone.now()
    # CreateRoom is idempotent: it returns the room created with the live call if LiveKit still has it.
    livekit_gateway.room_create(
        name=live.stream_call_id,
        empty_timeout=_room_lifetime(now, now=now),
        metadata=json.dumps({"live_call_id": str(live.pk), "title": live.title}),
    )
    call = Call.objects.create(
        tenant=live.tenant,
        room=live.room,
        type=Call.Type.VIDEO,
        status=Call.Status.ACTIVE,
        initiator=live.host,
        created_at=now,
        started_at=now,
        ring_expires_at=now,
        livekit_room=live.stream_call_id,
    )
    CallParticipant.objects.create(call=call, user=live.host, invited_at=now)
    live.call = call
    if live.tenant.recordings_enabled:
        try:
            recording, _ = recording_start(room=live.room, requested_by=live.host, call=call)
        except RecordingsDisabled:
            recording = None
        except livekit_gateway.LiveKitError:
            raise
        except ProblemError as exc:  # RoomNotLive, CallNotLive: LiveKit lost the room under us
            raise _RecordingRefused(exc) from None
        live.recording = recording
    live.transition_to(LiveCall.Status.LIVE, at=now)
    _save(live)
    _emit(live, "live_call.started")


# --- End, delete ----------------------------------------------------------------------------------


def live_call_end(*, tenant: Tenant, live_call_id: uuid.UUID | str, by: TenantUser | None) -> LiveCall:
    """End a live call: its Call ends, its recording stops, its LiveKit room is closed; status `ended`.

    `by` is the host, or None for the tenant's server key. Raises 404, 403 (not the host), 409 (not live).
    The egress stop and room deletion run after commit and never fail the request (LiveKit ends egress
    when the room closes, and the reconcilers confirm it).
    """
    with transaction.atomic():
        live = _lock(live_call_id=live_call_id, tenant=tenant)
        _require_host(live, by, "end")
        if live.status != LiveCall.Status.LIVE:
            raise live_call_conflict(live, f"Only a live call can end; this one is {live.status}.")
        _finish(live, LiveCall.Status.ENDED, reason="")
    return live


def _finish(live: LiveCall, target: str, *, reason: str, close_room: bool = True) -> None:
    """Move a locked live call to `target`, end its Call and stop its recording. Needs `_lock`'s locks."""
    now = timezone.now()
    live.transition_to(target, reason=reason, at=now)
    _save(live)
    call = live.call
    if call is not None:
        call.refresh_from_db(fields=["status"])
        if call.is_live:
            outcome = Call.Status.ENDED if target == LiveCall.Status.ENDED else Call.Status.FAILED
            call.transition_to(outcome, reason=reason or "live_call_ended", at=now)
            call.save(update_fields=["status", "ended_at", "end_reason", "failure_reason"])
        _stop_recordings_after_commit(call.pk)
    if close_room:
        _close_room_after_commit(live.room_id)
    _emit(live, f"live_call.{target}")


def _stop_recordings_after_commit(call_id: str) -> None:
    from recordings.services import recordings_stop_for_call

    transaction.on_commit(lambda: recordings_stop_for_call(Call.objects.get(pk=call_id)))


def _close_room_after_commit(room_id: int, *, actor: str = SYSTEM) -> None:
    """Delete the LiveKit room and close the Room row, after the recording stop (on_commit runs in order)."""

    def close() -> None:
        room = Room.objects.filter(pk=room_id, closed_at__isnull=True).first()
        if room is None:
            return
        try:
            room_delete(room=room, actor=actor)
        except livekit_gateway.LiveKitError as exc:
            # LiveKit closes the empty room on its own; its room_finished (or the reconciler) closes the row.
            logger.warning(
                "could not delete a live call's room", extra={"room": room.livekit_name, "error": exc.detail}
            )

    transaction.on_commit(close)


def live_call_delete(*, tenant: Tenant, live_call_id: uuid.UUID | str, by: TenantUser | None) -> None:
    """Cancel a scheduled live call: the row goes, its room is closed. 409 once it went live (end it instead)."""
    by_actor = user_actor(by) if by is not None else "server"
    with transaction.atomic():
        live = _lock(live_call_id=live_call_id, tenant=tenant)
        _require_host(live, by, "delete")
        if live.status != LiveCall.Status.SCHEDULED:
            raise live_call_conflict(live, f"Only a scheduled live call can be deleted; this one is {live.status}.")
        room_id = live.room_id
        _emit(live, "live_call.deleted", actor=by_actor)
        deletion_logged(tenant=live.tenant, type="live_call.deleted", object_id=str(live.pk), actor=by_actor)
        live.delete()
        _close_room_after_commit(room_id, actor=by_actor)


# --- Tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCallToken:
    token: str
    url: str
    expires_at: datetime
    role: str
    identity: str


def live_call_token(*, tenant: Tenant, live_call_id: uuid.UUID | str, user: TenantUser) -> LiveCallToken:
    """A LiveKit token for the live call's room: the host publishes (`host` role), anyone else of the
    tenant only subscribes (`viewer`). Tokens are handed out while the call is scheduled (the host can
    connect early, viewers can wait) or live. Raises 404, 409 (ended or errored), 503."""
    live = LiveCall.objects.filter(tenant=tenant, pk=live_call_id).select_related("host").first()
    if live is None:
        raise live_call_not_found()
    if live.status not in (LiveCall.Status.SCHEDULED, LiveCall.Status.LIVE):
        raise live_call_conflict(live, f"The live call is {live.status}; there is nothing to join.")
    role = "host" if user.pk == live.host_id else "viewer"
    try:
        minted = livekit_gateway.mint_token(
            room_name=live.stream_call_id,
            identity=user.external_id,
            name=user.display_name,
            role=role,
            metadata=json.dumps({"live_call_id": str(live.pk), "role": role}),
        )
    except livekit_gateway.LiveKitError as exc:
        raise provider_error(exc) from None
    return LiveCallToken(
        token=minted.token,
        url=settings.LIVEKIT_PUBLIC_URL,
        expires_at=minted.expires_at,
        role=role,
        identity=user.external_id,
    )


# --- The scheduled-start beat ---------------------------------------------------------------------


@dataclass
class AdvanceResult:
    started: int = 0
    errored: int = 0
    waiting: int = 0


def _host_connected(live: LiveCall) -> bool:
    """The participant mirror first (webhooks), then LiveKit itself (a webhook may be late or lost)."""
    if participants_connected(room=live.room).filter(identity=live.host.external_id).exists():
        return True
    try:
        info = livekit_gateway.participant_get(live.stream_call_id, live.host.external_id)
    except livekit_gateway.LiveKitNotFound:
        return False
    return info.state in _CONNECTED


def live_calls_advance(*, now: datetime | None = None, batch: int = 200) -> AdvanceResult:
    """Beat: scheduled calls that are due and whose host is connected in LiveKit go live; calls still not
    started LIVE_CALL_START_GRACE seconds after they were due become `errored` with the reason.

    An unscheduled call is due from its creation. Each call is claimed with `skip_locked`, so a start or
    delete in flight wins this round and two beats never act on one call twice. A LiveKit failure while
    asking about the host skips the call until the next beat; one while starting errors it (as the start
    endpoint does).
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.LIVE_CALL_START_GRACE)
    result = AdvanceResult()
    due = list(
        LiveCall.objects.filter(status=LiveCall.Status.SCHEDULED, created_at__lte=now)
        .exclude(scheduled_at__gt=now)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    for live_call_id in due:
        live = LiveCall.objects.select_related("room", "host", "tenant").get(pk=live_call_id)
        if live.due_at + grace <= now:
            if _error_unstarted(live_call_id, now=now, grace=grace):
                result.errored += 1
                failpoint("calls.live_advance.advanced")  # errored and committed; the calls after it wait
            continue
        try:
            connected = _host_connected(live)
        except livekit_gateway.LiveKitError as exc:
            logger.warning("could not ask LiveKit about a live call's host", extra={"error": exc.detail})
            continue
        if not connected:
            result.waiting += 1
            continue
        try:
            started = live_call_start(tenant=live.tenant, live_call_id=live_call_id, by=None)
        except ProblemError as exc:
            logger.warning("scheduled start failed", extra={"live_call": str(live_call_id), "error": exc.detail})
            continue
        result.started += int(started.status == LiveCall.Status.LIVE)
        failpoint("calls.live_advance.advanced")  # live (Call, Recording, event) and committed
    return result


def _error_unstarted(live_call_id: uuid.UUID, *, now: datetime, grace: timedelta) -> bool:
    with transaction.atomic():
        live = (
            LiveCall.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("room", "host", "tenant", "call")
            .filter(pk=live_call_id, status=LiveCall.Status.SCHEDULED)
            .first()
        )
        if live is None or live.due_at + grace > now:
            return False
        minutes = settings.LIVE_CALL_START_GRACE / 60
        reason = f"not started within {minutes:g} minutes of its scheduled time"
        # No Call yet: the room is all there is to close (its lock order does not matter without a Call).
        _finish(live, LiveCall.Status.ERRORED, reason=reason)
    return True


# --- What the rest of the core tells us -----------------------------------------------------------


def live_calls_close_for_room(room: Room) -> None:
    """ROOM_CLOSE_HANDLERS entry: LiveKit closed a live call's room (empty time-out, room_finished, reconcile).
    A scheduled call that never went live is errored, a live one ended. Runs under room_close's Room lock,
    after calls_end_for_room locked and ended the Call."""
    if not room.name.startswith(ROOM_NAME_PREFIX):
        return
    live = (
        LiveCall.objects.select_for_update(of=("self",))
        .select_related("room", "host", "tenant", "call")
        .filter(room=room)
        .first()
    )
    if live is None:
        return
    if live.status == LiveCall.Status.SCHEDULED:
        _finish(
            live, LiveCall.Status.ERRORED, reason="the LiveKit room closed before the call went live", close_room=False
        )
    elif live.status == LiveCall.Status.LIVE:
        _finish(live, LiveCall.Status.ENDED, reason="", close_room=False)


def live_call_sync_recording(live: LiveCall) -> LiveCall:
    """Fill `recording_ready_at` (and the media it points at) once the live call's recording is ready.

    The recordings app owns readiness (egress webhooks, reconciliation, file registration); a live call
    reads it instead of being told, so nothing in recordings knows about live calls. Called before a
    live call is shown; a conditional UPDATE, so two readers never write twice and no lock is needed.
    """
    from recordings.models import Recording
    from recordings.selectors import composite_media

    if live.recording_ready_at is not None or live.recording_id is None:
        return live
    recording = (
        Recording.objects.filter(pk=live.recording_id, status=Recording.Status.READY)
        .prefetch_related("media_entries__egress")
        .first()
    )
    entry = composite_media(recording) if recording is not None else None
    if recording is None or entry is None:
        return live
    ready_at = recording.finished_at or timezone.now()
    LiveCall.objects.filter(pk=live.pk, recording_ready_at__isnull=True).update(
        recording_ready_at=ready_at, recording_media_id=entry.pk, updated_at=timezone.now()
    )
    live.refresh_from_db(fields=["recording_ready_at", "recording_media_id", "updated_at"])
    return live
