"""Recording writes: start, stop, LiveKit egress bookkeeping, file registration, failures.

Locks. `recording_start` locks the Room row, so two starts for one room (or one call) are
serialized and the second sees the first's recording. Everything that changes a recording
after that locks the Recording row first, then its RecordingEgress rows.

LiveKit's egress webhooks can be lost, duplicated or late; `recording_apply_egress_info`
applies an EgressInfo idempotently and never moves an egress backwards, and
`recordings_reconcile_egress` (beat) asks LiveKit about egresses we have not heard from.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from livekit.protocol import egress as lk_egress
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from recordings import storage
from recordings.models import MediaEntry, Recording, RecordingEgress
from recordings.services.media import media_entry_delete
from rooms import livekit_gateway as gateway
from rooms.models import Room
from rooms.selectors import member_user_ids
from rooms.services import iso_ms
from scaiwave.api.errors import ProblemError
from scaiwave.audit import deletion_record
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant, TenantUser

if TYPE_CHECKING:
    from calls.models import Call
    from webhooks.models.intake import LiveKitEvent

logger = logging.getLogger("scaiwave.recordings")

EgressStatus = lk_egress.EgressStatus
_EGRESS_STATUS = {
    EgressStatus.EGRESS_STARTING: RecordingEgress.Status.STARTING,
    EgressStatus.EGRESS_ACTIVE: RecordingEgress.Status.ACTIVE,
    EgressStatus.EGRESS_ENDING: RecordingEgress.Status.ENDING,
    EgressStatus.EGRESS_COMPLETE: RecordingEgress.Status.COMPLETE,
    EgressStatus.EGRESS_FAILED: RecordingEgress.Status.FAILED,
    EgressStatus.EGRESS_ABORTED: RecordingEgress.Status.ABORTED,
    EgressStatus.EGRESS_LIMIT_REACHED: RecordingEgress.Status.LIMIT_REACHED,
}
# LiveKit's statuses only move forward; a delivery that would move an egress back is stale.
_EGRESS_RANK = {
    RecordingEgress.Status.STARTING: 0,
    RecordingEgress.Status.ACTIVE: 1,
    RecordingEgress.Status.ENDING: 2,
    RecordingEgress.Status.COMPLETE: 3,
    RecordingEgress.Status.FAILED: 3,
    RecordingEgress.Status.ABORTED: 3,
    RecordingEgress.Status.LIMIT_REACHED: 3,
}
_RECORDING_FAILURE_FOR_EGRESS = {
    RecordingEgress.Status.FAILED: Recording.Status.FAILED,
    RecordingEgress.Status.ABORTED: Recording.Status.ABORTED,
    RecordingEgress.Status.LIMIT_REACHED: Recording.Status.LIMIT_REACHED,
}
CONTENT_TYPES = {".mp4": "video/mp4", ".ogg": "audio/ogg", ".mp3": "audio/mpeg", ".webm": "video/webm"}


# --- Errors ------------------------------------------------------------------------------------


class RecordingsDisabled(ProblemError):
    def __init__(self) -> None:
        super().__init__(403, "recordings_disabled", "Recordings are disabled for this tenant.")


class RoomNotLive(ProblemError):
    def __init__(self) -> None:
        super().__init__(409, "room_not_live", "LiveKit has no running room to record: nobody is connected yet.")


class CallNotLive(ProblemError):
    def __init__(self, status: str) -> None:
        super().__init__(409, "call_not_live", f"The call is no longer active (it is {status}).", call_status=status)


class RecordingNotFinished(ProblemError):
    def __init__(self) -> None:
        super().__init__(409, "recording_in_progress", "The recording is still in progress; stop it first.")


# --- Events ------------------------------------------------------------------------------------


def recording_event_data(recording: Recording) -> dict[str, Any]:
    composite = next((e for e in recording.egresses.all() if e.kind == RecordingEgress.Kind.ROOM_COMPOSITE), None)
    return {
        "recordingId": recording.pk,
        "egressId": composite.egress_id if composite else None,
        "roomId": recording.room.name,
        "callId": recording.call_id,
        "status": recording.status,
        "reason": recording.failure_reason or None,
        "startedAt": iso_ms(recording.started_at) if recording.started_at else None,
        "stoppedAt": iso_ms(recording.stopped_at) if recording.stopped_at else None,
    }


def _emit(recording: Recording, type: str) -> None:
    """The tenant-wide event (room subscribers, webhooks), plus the calls surface's event for call recordings."""
    data = recording_event_data(recording)
    event_emit(tenant=recording.tenant, type=type, data=data, room_key=str(recording.room_id))
    if recording.call_id and type in ("recording_started", "recording_stopped"):
        event_emit(
            tenant=recording.tenant,
            type=f"swp.call.{type}",
            data={"call_id": recording.call_id, "recording_id": recording.pk, "status": recording.status},
            user_ids=member_user_ids(room=recording.room),
        )


# --- Start -------------------------------------------------------------------------------------


def recording_start(
    *,
    room: Room,
    requested_by: TenantUser | None,
    call: Call | None = None,
    audio: bool = True,
    video: bool = True,
    transcript: bool = False,
    speaker_tracks: bool = False,
) -> tuple[Recording, bool]:
    """Start recording a room (or one of its calls). Returns (recording, created).

    With `transcript` (a transcription is queued when ready) or `speaker_tracks`, each published microphone is
    also recorded on its own (audio-only track egress), so the transcript names each voice.

    Idempotent: a recording already starting or recording for the room (or call) is
    returned with created=False. Raises RecordingsDisabled (tenant setting), RoomNotLive,
    CallNotLive, and the gateway's LiveKit errors (502/503). Nothing is written unless
    LiveKit accepted the egress. Locks the Room row (for a call: the Call and its Room)
    for the whole check-then-start.
    """
    with transaction.atomic():
        if call is not None:
            # The same rows, in the same statement shape, as the calls app locks them (call, room,
            # initiator, tenant): two lock orders over these rows would deadlock with its webhook handler.
            call = _lock_call(call)
            locked_room = call.room
            if not call.is_live:
                raise CallNotLive(call.status)
        else:
            locked_room = Room.objects.select_for_update(no_key=True).get(pk=room.pk)
        tenant = Tenant.objects.get(pk=locked_room.tenant_id)
        existing = Recording.objects.filter(room=locked_room, status__in=Recording.ACTIVE_STATUSES)
        existing = existing.filter(call=call) if call is not None else existing.filter(call__isnull=True)
        active = existing.first()
        if active is not None:
            return active, False
        if not tenant.recordings_enabled:
            raise RecordingsDisabled()
        livekit_room = call.livekit_room if call is not None else locked_room.livekit_name
        owner = call.pk if call is not None else locked_room.name
        audio_only = not video
        key = storage.recording_key(owner=owner, extension=".ogg" if audio_only else ".mp4")
        try:
            info = gateway.egress_start_room_composite(room_name=livekit_room, filepath=key, audio_only=audio_only)
        except gateway.LiveKitNotFound:
            raise RoomNotLive() from None
        try:
            recording = Recording.objects.create(
                tenant=tenant,
                room=locked_room,
                call=call,
                audio=audio,
                video=video,
                transcript=transcript,
                speaker_tracks=transcript or speaker_tracks,
                livekit_room=livekit_room,
                storage_key=info.file_results[0].filename if info.file_results else key,
                requested_by=requested_by,
                # When LiveKit accepted the egress: the start answer's startedAt, and every later read's.
                started_at=timezone.now(),
            )
            egress = RecordingEgress.objects.create(
                recording=recording, egress_id=info.egress_id, kind=RecordingEgress.Kind.ROOM_COMPOSITE
            )
            _apply_to_egress(recording, egress, info)
            if recording.speaker_tracks:
                _start_track_egresses(recording)
            _emit(recording, "recording_started")
        except BaseException:
            # LiveKit is recording but we could not write it down: do not leave it running unseen.
            _stop_egress_quietly(info.egress_id)
            raise
    _sync_egress_quietly(recording)
    return recording, True


def _sync_egress_quietly(recording: Recording) -> None:
    """Ask LiveKit once more about a just-started recording's egresses.

    A webhook that arrived before recording_start committed found no row and changed
    nothing; LiveKit's current state, read after the commit, covers it.
    """
    for egress_id in RecordingEgress.objects.filter(recording=recording).values_list("egress_id", flat=True):
        try:
            found = gateway.egress_list(egress_id=egress_id)
        except gateway.LiveKitError:
            return  # the webhooks, or the reconciler, will tell us
        if found:
            recording_apply_egress_info(info=found[0])
    recording.refresh_from_db()


def _lock_call(call: Call) -> Call:
    from calls.models import Call as CallModel

    # Same lock as the calls app takes (the call row only), so the two never deadlock.
    return (
        CallModel.objects.select_for_update(of=("self",)).select_related("room", "initiator", "tenant").get(pk=call.pk)
    )


def _start_track_egresses(recording: Recording) -> None:
    """One audio-only track egress per published microphone, for per-speaker transcripts.

    Best effort: a track that cannot be recorded is logged; the composite still is.
    """
    try:
        participants = gateway.participant_list(recording.livekit_room)
    except gateway.LiveKitError:
        logger.warning("could not list participants for track egress", extra={"recording": recording.pk})
        return
    for participant in participants:
        for track in participant.tracks:
            if track.type == lk_models.TrackType.AUDIO:
                _start_track_egress(
                    recording, identity=participant.identity, name=participant.name, track_sid=track.sid
                )


def _start_track_egress(recording: Recording, *, identity: str, name: str, track_sid: str) -> None:
    filepath = _track_key_stem(recording, identity=identity, track_sid=track_sid) + ".ogg"
    try:
        info = gateway.egress_start_track(room_name=recording.livekit_room, track_sid=track_sid, filepath=filepath)
    except gateway.LiveKitError as exc:
        logger.warning("track egress did not start", extra={"track": track_sid, "error": exc.detail})
        return
    egress = RecordingEgress.objects.create(
        recording=recording,
        egress_id=info.egress_id,
        kind=RecordingEgress.Kind.TRACK_AUDIO,
        track_sid=track_sid,
        participant_identity=identity,
        participant_name=name[:256],
    )
    _apply_to_egress(recording, egress, info)


def recording_track_published(*, livekit_room: str, identity: str, track_sid: str, name: str = "") -> None:
    """A microphone published while a recording with speaker tracks runs gets its own track egress too.

    Locks each such Recording row; a track that already has an egress is left alone (webhooks repeat).
    """
    candidates = Recording.objects.filter(
        livekit_room=livekit_room, speaker_tracks=True, status__in=Recording.ACTIVE_STATUSES
    ).values_list("pk", flat=True)
    for recording_id in candidates:
        with transaction.atomic():
            recording = Recording.objects.select_for_update(of=("self",)).get(pk=recording_id)
            if not recording.is_active or recording.egresses.filter(track_sid=track_sid).exists():
                continue
            _start_track_egress(recording, identity=identity, name=name, track_sid=track_sid)


def _stop_egress_quietly(egress_id: str) -> None:
    try:
        gateway.egress_stop(egress_id)
    except gateway.LiveKitError:
        logger.warning("could not stop egress", extra={"egress_id": egress_id}, exc_info=True)


# --- Stop --------------------------------------------------------------------------------------


def recording_stop(*, recording: Recording) -> Recording:
    """Ask LiveKit to stop every running egress of the recording. Safe to call twice.

    A recording that is not starting/recording is returned unchanged. Raises the
    gateway's LiveKitUnreachable (502) when LiveKit cannot be asked; nothing changes then.
    Locks the Recording row, then its egresses.
    """
    with transaction.atomic():
        locked = Recording.objects.select_for_update(of=("self",)).select_related("room", "tenant").get(pk=recording.pk)
        if not locked.is_active:
            return locked
        # Stopping is announced first (recording_stopped): an egress LiveKit aborts because it was stopped before
        # it became active must still read as stopped to the client, not only as recording_failed. If LiveKit
        # cannot be asked, the transaction (and the event) rolls back.
        _transition(locked, Recording.Status.STOPPING)
        running = RecordingEgress.objects.select_for_update().filter(
            recording=locked, status__in=RecordingEgress.RUNNING_STATUSES
        )
        # The composite first ("room_composite" < "track_audio"): its end is what the user hears as the stop.
        for egress in running.order_by("kind", "id"):
            info = _egress_stop_info(egress)
            if info is not None:
                _apply_egress(locked, egress, info)
    return locked


def _egress_stop_info(egress: RecordingEgress) -> lk_egress.EgressInfo | None:
    try:
        return gateway.egress_stop(egress.egress_id)
    except gateway.LiveKitNotFound:
        return _lost_egress_info(egress.egress_id)
    except gateway.LiveKitFailure as exc:
        if exc.livekit_status != 412:
            raise
        # 412: the egress already ended (a lost webhook); ask for its final state instead.
        found = gateway.egress_list(egress_id=egress.egress_id)
        return found[0] if found else _lost_egress_info(egress.egress_id)


def _lost_egress_info(egress_id: str) -> lk_egress.EgressInfo:
    return lk_egress.EgressInfo(
        egress_id=egress_id, status=EgressStatus.EGRESS_FAILED, error="LiveKit no longer knows this egress"
    )


def recordings_stop_for_call(call: Call) -> None:
    """Stop the call's active recording; called by the calls app when a call ends. Never raises for LiveKit."""
    for recording in Recording.objects.filter(call=call, status__in=Recording.ACTIVE_STATUSES):
        _stop_quietly(recording)


def recordings_stop_for_room(room: Room) -> None:
    """ROOM_CLOSE_HANDLERS entry: stop every active recording of the room and of its calls."""
    for recording in Recording.objects.filter(room=room, status__in=Recording.ACTIVE_STATUSES):
        _stop_quietly(recording)


def _stop_quietly(recording: Recording) -> None:
    try:
        with transaction.atomic():
            recording_stop(recording=recording)
    except gateway.LiveKitError as exc:
        # LiveKit ends egress itself when the room closes; the reconciler confirms it later.
        logger.warning("auto-stop could not reach LiveKit", extra={"recording": recording.pk, "error": exc.detail})
        with transaction.atomic():
            locked = (
                Recording.objects.select_for_update(of=("self",)).select_related("room", "tenant").get(pk=recording.pk)
            )
            if locked.is_active:
                _transition(locked, Recording.Status.STOPPING)


# --- Egress bookkeeping ------------------------------------------------------------------------


def recording_apply_livekit_event(event: lk_webhook.WebhookEvent, record: LiveKitEvent | None = None) -> None:
    """LIVEKIT_EVENT_HANDLERS entry: egress_started/updated/ended for egresses we started, and
    track_published for per-speaker audio of recordings that asked for a transcript."""
    if event.event == "track_published":
        if event.track.type == lk_models.TrackType.AUDIO and event.track.sid and event.participant.identity:
            recording_track_published(
                livekit_room=event.room.name,
                identity=event.participant.identity,
                name=event.participant.name,
                track_sid=event.track.sid,
            )
        return
    if event.event not in ("egress_started", "egress_updated", "egress_ended"):
        return
    if not event.HasField("egress_info") or not event.egress_info.egress_id:
        return
    recording_apply_egress_info(info=event.egress_info)


def recording_apply_egress_info(*, info: lk_egress.EgressInfo) -> Recording | None:
    """Apply LiveKit's view of one egress (from a webhook, a stop reply or ListEgress). Idempotent.

    Returns the recording, or None for an egress that is not ours. Locks the Recording row,
    then the egress row.
    """
    recording_id = (
        RecordingEgress.objects.filter(egress_id=info.egress_id).values_list("recording_id", flat=True).first()
    )
    if recording_id is None:
        return None
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update(of=("self",)).select_related("room", "tenant").get(pk=recording_id)
        )
        egress = RecordingEgress.objects.select_for_update().get(egress_id=info.egress_id)
        _apply_egress(recording, egress, info)
    return recording


# --- Which file keys an egress may report ------------------------------------------------------
#
# An egress_ended names its file in fileResults.filename. A forged (or buggy) one could name any object, another
# tenant's recording included; only the path ScaiWave asked LiveKit to write is accepted. LiveKit may change the
# extension (it picks one for the codec), never the rest of the path.

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")


def _composite_key_stem(recording: Recording) -> str:
    """The composite's path without extension: `recordings/<owner>/<timestamp>` (also the tracks' folder)."""
    return posixpath.splitext(recording.storage_key)[0]


def _track_key_stem(recording: Recording, *, identity: str, track_sid: str) -> str:
    return f"{_composite_key_stem(recording)}/{storage.key_part(identity)}-{track_sid}"


def _egress_key_stem(recording: Recording, egress: RecordingEgress) -> str:
    if egress.kind == RecordingEgress.Kind.ROOM_COMPOSITE:
        return _composite_key_stem(recording)
    return _track_key_stem(recording, identity=egress.participant_identity, track_sid=egress.track_sid)


def _foreign_key_reason(recording: Recording, egress: RecordingEgress, key: str) -> str:
    """Why `key` is not a file this egress may register ("" when it is: the asked path plus an extension)."""
    stem = _egress_key_stem(recording, egress)
    if key.startswith(stem) and _EXTENSION.fullmatch(key[len(stem) :]):
        return ""
    return f"LiveKit reported the file {key[:200]!r}, not the path this egress was asked to write ({stem}.*)"


def _apply_to_egress(recording: Recording, egress: RecordingEgress, info: lk_egress.EgressInfo) -> bool:
    """Copy LiveKit's status, error and file facts onto the row. False if the info is stale.

    A file outside the path ScaiWave asked for fails the egress with that reason (its key is not kept).
    """
    status = _EGRESS_STATUS.get(info.status, RecordingEgress.Status.FAILED)
    result = info.file_results[0] if info.file_results else None
    refused = _foreign_key_reason(recording, egress, result.filename) if result and result.filename else ""
    if refused:
        status = RecordingEgress.Status.FAILED
    now = timezone.now()
    if _EGRESS_RANK[status] < _EGRESS_RANK[RecordingEgress.Status(egress.status)] or (
        not egress.is_running and status != egress.status
    ):
        egress.updated_at = now
        egress.save(update_fields=["updated_at"])
        return False
    egress.status = status
    egress.error = info.error or egress.error
    if refused:
        logger.warning("egress reported a file outside its path", extra={"egress_id": egress.egress_id})
        egress.error = refused
    elif result is not None:
        egress.file_key = result.filename or egress.file_key
        egress.file_size = result.size or egress.file_size
        egress.file_location = result.location or egress.file_location
    egress.updated_at = now
    if not egress.is_running and egress.ended_at is None:
        egress.ended_at = now
    egress.save()
    return True


def _apply_egress(recording: Recording, egress: RecordingEgress, info: lk_egress.EgressInfo) -> None:
    """Both rows are locked by the caller."""
    previous = egress.status
    if not _apply_to_egress(recording, egress, info) or (egress.status == previous and egress.is_running):
        return
    S = RecordingEgress.Status
    if egress.kind != RecordingEgress.Kind.ROOM_COMPOSITE:
        if egress.status in (S.COMPLETE, S.LIMIT_REACHED) or recording.status == Recording.Status.PROCESSING:
            _queue_registration(recording)
        return
    if egress.status == S.ACTIVE and recording.status == Recording.Status.STARTING:
        _transition(recording, Recording.Status.RECORDING)
    elif egress.status == S.ENDING and recording.is_active:
        _transition(recording, Recording.Status.STOPPING)
    elif egress.status == S.COMPLETE and recording.can_transition_to(Recording.Status.PROCESSING):
        _transition(recording, Recording.Status.PROCESSING)
        _queue_registration(recording)
    elif egress.status in _RECORDING_FAILURE_FOR_EGRESS:
        reason = egress.error or info.details or f"egress ended with status {egress.status}"
        recording_fail(recording=recording, reason=reason, status=_RECORDING_FAILURE_FOR_EGRESS[S(egress.status)])
        if egress.status == S.LIMIT_REACHED and egress.file_key:
            # LiveKit still finalizes the file up to the limit: keep it.
            _queue_registration(recording)


def _transition(recording: Recording, target: str) -> bool:
    """Move a locked recording and emit what goes with the move. False when the move is not allowed."""
    if not recording.can_transition_to(target):
        return False
    was_active = recording.is_active
    recording.transition_to(target)
    recording.save()
    if was_active and target in (Recording.Status.STOPPING, Recording.Status.PROCESSING):
        _emit(recording, "recording_stopped")
    elif target == Recording.Status.READY:
        _emit(recording, "recording_ready")
    return True


def recording_fail(*, recording: Recording, reason: str, status: str = Recording.Status.FAILED) -> bool:
    """Mark a recording failed/aborted/limit_reached with the reason (LiveKit's error text), and say so.

    The caller holds the Recording row lock (or this takes it). False if it had already finished.
    """
    with transaction.atomic():
        if not recording.can_transition_to(status):
            return False
        recording.transition_to(status, reason=reason)
        recording.save()
        _emit(recording, "recording_failed")
        # Anything still running for a failed recording is of no use.
        running = recording.egresses.filter(status__in=RecordingEgress.RUNNING_STATUSES)
        for egress_id in running.values_list("egress_id", flat=True):
            transaction.on_commit(functools.partial(_stop_egress_quietly, egress_id))
    logger.info("recording failed", extra={"recording": recording.pk, "status": status, "reason": reason})
    return True


def _queue_registration(recording: Recording) -> None:
    from recordings.tasks import recording_register_files_task

    recording_id = recording.pk
    transaction.on_commit(lambda: recording_register_files_task.delay(recording_id))


# --- File registration -------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileFacts:
    size: int
    duration: float
    sha256: str


def _finished_unregistered(recording_id: str) -> list[RecordingEgress]:
    finished = (RecordingEgress.Status.COMPLETE, RecordingEgress.Status.LIMIT_REACHED)
    return list(
        RecordingEgress.objects.filter(recording_id=recording_id, status__in=finished, media_entry__isnull=True)
        .exclude(file_key="")
        .select_related("recording")
        .order_by("kind", "id")
    )


def _inspect_file(recording: Recording, egress: RecordingEgress) -> _FileFacts | str:
    """Size, duration and checksum of a stored egress file, or what is wrong with it (also: not this egress's
    path, or already registered elsewhere — rows stored before file keys were checked may hold such keys)."""
    key = egress.file_key
    refused = _foreign_key_reason(recording, egress, key)
    if refused:
        return refused
    if MediaEntry.objects.filter(key=key).exists():
        return f"the egress file {key} is already registered to another media entry"
    size = storage.object_size(key)
    if size is None:
        return f"the egress file {key} is not in storage"
    if size == 0:
        return f"the egress file {key} is empty"
    duration = storage.probe_duration(key)
    if duration is None:
        return f"the egress file {key} is not readable media"
    return _FileFacts(size=size, duration=round(duration, 3), sha256=storage.object_sha256(key))


def recording_register_file(*, recording_id: str) -> Recording | None:
    """Register every finished egress file of the recording as a MediaEntry; then mark it ready.

    For each file: the object must exist in storage with size > 0 and ffprobe must read a
    duration; otherwise the egress (and, for the composite, the recording) fails with the
    reason. Idempotent: files already registered are skipped. The files are read before the
    Recording row is locked (ffprobe and hashing take a while; a stop must not wait for them).
    """
    inspected = {egress.pk: _inspect_file(egress.recording, egress) for egress in _finished_unregistered(recording_id)}
    failpoint("recordings.register_file.inspected")
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update(of=("self",))
            .select_related("room", "tenant")
            .filter(pk=recording_id)
            .first()
        )
        if recording is None:
            return None
        egresses = list(RecordingEgress.objects.select_for_update().filter(recording=recording))
        pending = {egress.pk for egress in _finished_unregistered(recording_id)}
        for egress in egresses:
            facts = inspected.get(egress.pk)
            if egress.pk not in pending or facts is None:
                continue  # registered meanwhile, or finished after we looked: the next run takes it
            problem = facts if isinstance(facts, str) else _register_entry(recording, egress, facts)
            if problem:
                # Failed for good (not retried): a reconcile pass must not meet the same file again.
                egress.status, egress.error = RecordingEgress.Status.FAILED, problem
                egress.save(update_fields=["status", "error"])
                if egress.kind == RecordingEgress.Kind.ROOM_COMPOSITE:
                    recording_fail(recording=recording, reason=problem)
        if pending - inspected.keys():
            _queue_registration(recording)  # finished after we looked; ready waits for that run
        elif recording.status == Recording.Status.PROCESSING and not any(e.is_running for e in egresses):
            composite = next((e for e in egresses if e.kind == RecordingEgress.Kind.ROOM_COMPOSITE), None)
            if composite is not None and MediaEntry.objects.filter(egress=composite).exists():
                _transition(recording, Recording.Status.READY)
                if recording.transcript:
                    transaction.on_commit(lambda: _run_ready_handlers(recording_id))
    return recording


def _register_entry(recording: Recording, egress: RecordingEgress, facts: _FileFacts) -> str | None:
    """Create the egress file's MediaEntry; the reason when its key was registered meanwhile (unique key)."""
    extension = posixpath.splitext(egress.file_key)[1].lower()
    try:
        with transaction.atomic():
            MediaEntry.objects.create(
                tenant=recording.tenant,
                key=egress.file_key,
                content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
                size=facts.size,
                duration_seconds=facts.duration,
                sha256=facts.sha256,
                source=MediaEntry.Source.EGRESS,
                recording=recording,
                egress=egress,
            )
    except IntegrityError:
        return f"the egress file {egress.file_key} is already registered to another media entry"
    return None


@lru_cache(maxsize=1)
def _ready_handlers() -> tuple[Callable[[Recording], None], ...]:
    loaded = []
    for dotted in settings.RECORDING_READY_HANDLERS:
        module_name, _, attr = dotted.rpartition(".")
        loaded.append(getattr(import_module(module_name), attr))
    return tuple(loaded)


def _run_ready_handlers(recording_id: str) -> None:
    """After a recording with `transcript: true` is ready: the transcription app's hooks."""
    recording = Recording.objects.select_related("room", "tenant", "call").get(pk=recording_id)
    for handler in _ready_handlers():
        try:
            handler(recording)
        except Exception:
            logger.exception("recording ready handler failed", extra={"recording": recording_id})


# --- Reconciliation ----------------------------------------------------------------------------


def recordings_reconcile_egress(*, older_than_seconds: float | None = None, batch: int = 100) -> int:
    """Ask LiveKit (ListEgress) about egresses we have not heard from for a while; apply the answers.

    Webhooks can be lost: an egress stuck in starting/active/ending here may have ended
    long ago. An egress LiveKit no longer knows fails with that reason. Also re-queues
    file registration for recordings left in processing. Returns how many egresses changed.
    """
    age = settings.RECORDING_RECONCILE_AGE if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=age)
    stale = list(
        RecordingEgress.objects.filter(status__in=RecordingEgress.RUNNING_STATUSES, updated_at__lte=cutoff)
        .order_by("updated_at")
        .values_list("egress_id", "status")[:batch]
    )
    changed = 0
    for egress_id, status in stale:
        try:
            found = gateway.egress_list(egress_id=egress_id)
        except gateway.LiveKitNotFound:
            found = []
        except gateway.LiveKitError as exc:
            logger.warning("egress reconciliation stopped: LiveKit unavailable", extra={"error": exc.detail})
            break
        info = found[0] if found else _lost_egress_info(egress_id)
        recording_apply_egress_info(info=info)
        if RecordingEgress.objects.filter(egress_id=egress_id).exclude(status=status).exists():
            changed += 1
            # This egress (and its recording) is updated and committed; the stale ones after it are not.
            failpoint("recordings.reconcile_egress.applied")
    for recording in Recording.objects.filter(status=Recording.Status.PROCESSING, stopped_at__lte=cutoff):
        _queue_registration(recording)
    return changed


# --- Delete ------------------------------------------------------------------------------------


def recording_delete(*, recording: Recording, actor: str) -> None:
    """Delete a finished recording: its stored objects first, then the rows; `recording_deleted` names the
    actor (scaiwave.audit). Raises RecordingNotFinished."""
    with transaction.atomic():
        locked = Recording.objects.select_for_update(of=("self",)).select_related("room", "tenant").get(pk=recording.pk)
        if not locked.is_finished:
            raise RecordingNotFinished()
        for entry in MediaEntry.objects.filter(recording=locked):
            media_entry_delete(entry=entry)
        deletion_record(
            tenant=locked.tenant,
            type="recording_deleted",
            object_id=locked.pk,
            actor=actor,
            room_key=str(locked.room_id),
            roomId=locked.room.name,
            callId=locked.call_id,
            status=locked.status,
        )
        locked.delete()
