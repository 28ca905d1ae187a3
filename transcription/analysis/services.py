"""Writes of the uploaded-call surface (document 002): create from an upload, process, correct speakers, delete.

Lifecycle: QUEUED -> TRANSCRIBING -> COMPLETED | FAILED. `uploaded_call_process` (the Celery task on the
`transcription` queue) runs the call's Transcription job in-process, resolves speakers, analyses the transcript
and completes the call in one transaction with its action items; `analysis_completed` follows on commit.
A worker that dies leaves the call TRANSCRIBING: the broker redelivers the task (acks_late), or the stuck-call
sweep requeues it, until ANALYSIS_MAX_ATTEMPTS is spent and it FAILS with a reason.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from recordings.models import MediaEntry
from recordings.services import media_entry_register
from recordings.services.media import media_entry_delete
from scaiwave.api.errors import ProblemError
from scaiwave.audit import SYSTEM, deletion_record
from scaiwave.events.services import event_emit
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant, TenantUser
from transcription.analysis.service import analyze
from transcription.analysis.speakers import (
    SEPARATION_SINGLE,
    SEPARATION_STEREO,
    CallParties,
    resolve_speakers,
    speaker_by_label,
)
from transcription.analysis.types import AnalysisContext, SpokenSegment
from transcription.analysis.upload import StoredUpload
from transcription.models import ActionItem, Transcription, TranscriptSegment, UploadedCall
from transcription.services import TranscriptionRetry, transcription_create_for_media, transcription_run

logger = logging.getLogger("scaiwave.analysis")


@dataclass(frozen=True)
class CallMetadata:
    """The upload's `metadata` envelope (every field optional)."""

    title: str = ""
    contact_name: str = ""
    contact_id: str = ""
    phone_number: str = ""
    organization: str = ""
    direction: str = ""
    recorded_at: datetime | None = None
    duration_seconds: float | None = None


# --- Creating ---------------------------------------------------------------------------------------


def _queue(call_id: str) -> None:
    from transcription.analysis.tasks import uploaded_call_process_task

    transaction.on_commit(lambda: uploaded_call_process_task.delay(call_id))


def _metadata_of(call: UploadedCall) -> CallMetadata:
    return CallMetadata(
        title=call.title,
        contact_name=call.contact_name,
        contact_id=call.contact_id,
        phone_number=call.phone_number,
        organization=call.organization,
        direction=call.direction,
        recorded_at=call.recorded_at,
        duration_seconds=call.duration_seconds,
    )


def uploaded_call_replay(
    *,
    owner: TenantUser,
    idempotency_key: str,
    sha256: str,
    metadata: CallMetadata,
    measured_duration: float | None,
) -> UploadedCall | None:
    """The call an Idempotency-Key already made for this user (same file and metadata), or None.

    Raises ProblemError 422 idempotency_key_reused when the key came with a different file or metadata (a replay
    would silently drop the new metadata).
    """
    if not idempotency_key:
        return None
    existing = UploadedCall.objects.filter(
        tenant_id=owner.tenant_id, owner=owner, idempotency_key=idempotency_key
    ).first()
    if existing is None:
        return None
    if existing.upload_sha256 != sha256:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different file; use a new key for a new upload.",
        )
    if _metadata_of(existing) != _as_stored(metadata, measured_duration):
        raise ProblemError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with different metadata; use a new key for a new upload.",
        )
    return existing


def _as_stored(metadata: CallMetadata, measured_duration: float | None) -> CallMetadata:
    """The metadata as a new call stores it: the measured duration when none was sent."""
    if metadata.duration_seconds is not None:
        return metadata
    return dataclasses.replace(metadata, duration_seconds=measured_duration)


def uploaded_call_create(
    *,
    tenant: Tenant,
    owner: TenantUser,
    stored: StoredUpload,
    metadata: CallMetadata,
    measured_duration: float | None,
    idempotency_key: str = "",
) -> tuple[UploadedCall, bool]:
    """Record an upload already in storage and queue its processing. Returns (call, created).

    On an Idempotency-Key replay (same user, key, file and metadata) returns the first call and created=False;
    the caller deletes the duplicate object. Raises ProblemError 422 idempotency_key_reused (same key, other file
    or metadata), 503 transcription_unavailable, 403 transcription_disabled.
    """
    replay = uploaded_call_replay(
        owner=owner,
        idempotency_key=idempotency_key,
        sha256=stored.sha256,
        metadata=metadata,
        measured_duration=measured_duration,
    )
    if replay is not None:
        return replay, False
    try:
        with transaction.atomic():
            entry = media_entry_register(
                tenant=tenant,
                key=stored.key,
                content_type=stored.content_type,
                size=stored.size,
                sha256=stored.sha256,
                source=MediaEntry.Source.UPLOAD,
                duration_seconds=measured_duration,
            )
            transcription = transcription_create_for_media(tenant=tenant, media_entry=entry, queue=False)
            call = UploadedCall.objects.create(
                tenant=tenant,
                owner=owner,
                title=metadata.title,
                contact_name=metadata.contact_name,
                contact_id=metadata.contact_id,
                phone_number=metadata.phone_number,
                organization=metadata.organization,
                direction=metadata.direction,
                recorded_at=metadata.recorded_at,
                duration_seconds=_as_stored(metadata, measured_duration).duration_seconds,
                media_entry=entry,
                transcription=transcription,
                idempotency_key=idempotency_key,
                upload_sha256=stored.sha256,
            )
            _queue(str(call.pk))
    except IntegrityError:
        # Two requests with the same key raced: the other one's row won the unique constraint.
        replay = uploaded_call_replay(
            owner=owner,
            idempotency_key=idempotency_key,
            sha256=stored.sha256,
            metadata=metadata,
            measured_duration=measured_duration,
        )
        if replay is None:
            raise
        return replay, False
    return call, True


# --- Processing -------------------------------------------------------------------------------------


def _claim(call_id: str) -> UploadedCall | None:
    """QUEUED (or TRANSCRIBING after a worker died) -> TRANSCRIBING; None when there is nothing to do."""
    with transaction.atomic():
        call = (
            UploadedCall.objects.select_for_update()
            .filter(pk=call_id, status__in=[UploadedCall.Status.QUEUED, UploadedCall.Status.TRANSCRIBING])
            .first()
        )
        if call is None or not call.can_become(UploadedCall.Status.TRANSCRIBING):
            return None
        now = timezone.now()
        call.status = UploadedCall.Status.TRANSCRIBING
        call.transcribing_since = now
        call.attempts += 1
        call.updated_at = now
        call.save(update_fields=["status", "transcribing_since", "attempts", "updated_at"])
    return call


def _fail(call_id: str, reason: str) -> None:
    with transaction.atomic():
        call = (
            UploadedCall.objects.select_for_update()
            .select_related("tenant")
            .filter(pk=call_id, status__in=[UploadedCall.Status.QUEUED, UploadedCall.Status.TRANSCRIBING])
            .first()
        )
        if call is None or not call.can_become(UploadedCall.Status.FAILED):
            return
        call.status = UploadedCall.Status.FAILED
        call.error_reason = reason[:2000]
        call.updated_at = call.completed_at = timezone.now()
        call.save(update_fields=["status", "error_reason", "updated_at", "completed_at"])
        event_emit(
            tenant=call.tenant,
            type="analysis_failed",
            data={"callId": str(call.pk), "status": call.status, "errorReason": call.error_reason},
            user_ids=[call.owner_id],
        )


def uploaded_call_process(*, call_id: str) -> None:
    """Transcribe, resolve speakers, analyse, complete. Safe to run twice (a finished call is left alone).

    Raises TranscriptionRetry for a transient transcription failure (the task retries; the call waits QUEUED).
    """
    call = _claim(call_id)
    if call is None:
        return
    if call.transcription_id is None:
        _fail(call_id, "The call's transcription is missing.")
        return
    try:
        transcription_run(transcription_id=call.transcription_id)
    except TranscriptionRetry:
        UploadedCall.objects.filter(pk=call_id, status=UploadedCall.Status.TRANSCRIBING).update(
            status=UploadedCall.Status.QUEUED, updated_at=timezone.now()
        )
        raise
    transcription = Transcription.objects.filter(pk=call.transcription_id).first()
    if transcription is None:
        _fail(call_id, "The call's transcription was deleted.")
        return
    if transcription.status == Transcription.Status.FAILED:
        _fail(call_id, f"Transcription failed: {transcription.error or 'unknown error'}")
        return
    if transcription.status != Transcription.Status.COMPLETED:
        return  # another worker runs the job now; it completes the call
    try:
        _complete(call_id)
    except Exception as exc:
        logger.exception("analysis failed", extra={"call_id": call_id})
        _fail(call_id, f"Analysis failed: {exc}")


def _complete(call_id: str) -> None:
    """Resolve speakers, analyse and store it all with the call COMPLETED, in one transaction (row lock)."""
    with transaction.atomic():
        call = (
            UploadedCall.objects.select_for_update(of=("self",))
            .select_related("tenant", "owner", "transcription")
            .filter(pk=call_id, status=UploadedCall.Status.TRANSCRIBING)
            .first()
        )
        if call is None or call.transcription is None:
            return
        segments = list(TranscriptSegment.objects.filter(transcription=call.transcription).order_by("index"))
        # "Speaker 1" is the left channel, "Speaker 2" the right (transcription_run labels channels in order).
        labels = sorted({s.speaker_label for s in segments}) or ["Speaker 1"]
        stereo = len(labels) == 2
        texts: dict[str, list[str]] = {}
        for segment in segments:
            texts.setdefault(segment.speaker_label, []).append(segment.text)
        speakers = resolve_speakers(
            labels=labels,
            texts_by_label=texts,
            parties=CallParties(
                user_name=call.owner.display_name,
                contact_name=call.contact_name,
                organization=call.organization,
                phone_number=call.phone_number,
                direction=call.direction,
            ),
        )
        by_label = speaker_by_label(speakers)
        for segment in segments:
            segment.speaker_name = str(by_label[segment.speaker_label]["name"])
        TranscriptSegment.objects.bulk_update(segments, ["speaker_name"])
        spoken = [
            SpokenSegment(speaker=s.speaker_name, start=s.start, end=s.end, text=s.text) for s in segments if s.text
        ]
        result = analyze(
            spoken,
            AnalysisContext(
                recorded_at=call.recorded_at or call.created_at,
                speakers=tuple(str(s["name"]) for s in speakers),
                language=call.transcription.detected_language or "en",
            ),
        )
        id_by_name = {str(s["name"]): str(s["speakerId"]) for s in speakers}
        now = timezone.now()
        ActionItem.objects.filter(call=call).delete()
        ActionItem.objects.bulk_create(
            ActionItem(
                call=call,
                user_id=call.owner_id,
                text=item.text,
                owner_name=item.owner or "",
                owner_speaker_id=id_by_name.get(item.owner or "", ""),
                speaker_id=id_by_name.get(item.speaker, ""),
                due_date=item.due_date,
                due_text=item.due_text or "",
                at_seconds=item.at_seconds,
                created_at=now,
                updated_at=now,
            )
            for item in result.action_items
        )
        # Names are stored as speaker ids so a later speaker correction renames them everywhere.
        call.analysis = {
            "summary": result.summary,
            "keyTopics": result.key_topics,
            "talkTime": {id_by_name.get(name, name): share for name, share in result.talk_time.items()},
            "questions": [
                {"speakerId": id_by_name.get(q.speaker, ""), "text": q.text, "atSeconds": q.at_seconds}
                for q in result.questions
            ],
            "analyzer": result.analyzer,
        }
        call.speakers = speakers
        call.speaker_separation = SEPARATION_STEREO if stereo else SEPARATION_SINGLE
        if call.duration_seconds is None and call.transcription.duration is not None:
            call.duration_seconds = call.transcription.duration
        call.status = UploadedCall.Status.COMPLETED
        call.error_reason = ""
        call.completed_at = call.updated_at = now
        call.save(
            update_fields=[
                "analysis",
                "speakers",
                "speaker_separation",
                "duration_seconds",
                "status",
                "error_reason",
                "completed_at",
                "updated_at",
            ]
        )
        event_emit(
            tenant=call.tenant,
            type="analysis_completed",
            data={
                "callId": str(call.pk),
                "status": call.status,
                "actionItemCount": len(result.action_items),
                "completedAt": now.isoformat().replace("+00:00", "Z"),
            },
            user_ids=[call.owner_id],
        )


def uploaded_calls_recover_stuck(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: calls TRANSCRIBING (or QUEUED) for longer than ANALYSIS_STUCK_AFTER lost their worker or their
    message. Each is queued again, or FAILED with a reason once ANALYSIS_MAX_ATTEMPTS runs were spent."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.ANALYSIS_STUCK_AFTER)
    requeued = failed = 0
    stuck = UploadedCall.objects.filter(
        status=UploadedCall.Status.TRANSCRIBING, transcribing_since__lt=cutoff
    ) | UploadedCall.objects.filter(status=UploadedCall.Status.QUEUED, updated_at__lt=cutoff)
    for call_id in list(stuck.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            call = UploadedCall.objects.select_for_update().filter(pk=call_id).first()
            if call is None or call.status not in (UploadedCall.Status.TRANSCRIBING, UploadedCall.Status.QUEUED):
                continue
            if call.attempts >= settings.ANALYSIS_MAX_ATTEMPTS:
                reason = (
                    f"Processing stopped responding {call.attempts} times (the worker was lost or timed out); "
                    "upload the recording again."
                )
                _fail(str(call_id), reason)
                failed += 1
            else:
                call.status = UploadedCall.Status.QUEUED
                call.transcribing_since = None
                call.updated_at = timezone.now()
                call.save(update_fields=["status", "transcribing_since", "updated_at"])
                _queue(str(call.pk))
                requeued += 1
        # This call is failed or requeued and committed; the stuck calls after it are not yet.
        failpoint("analysis.recover_stuck.recovered")
    return {"requeued": requeued, "failed": failed}


# --- Speakers and action items ----------------------------------------------------------------------


@transaction.atomic
def uploaded_call_speakers_update(*, call: UploadedCall, names: dict[str, str]) -> UploadedCall:
    """Rename speakers ({speakerId: name}); the transcript's segments and the action items' owners follow.

    Raises ProblemError 422 call_not_completed, 400 validation_failed (an unknown speaker id).
    Locks the call row so two corrections apply one after the other.
    """
    locked = UploadedCall.objects.select_for_update().get(pk=call.pk)
    if locked.status != UploadedCall.Status.COMPLETED:
        raise ProblemError(422, "call_not_completed", "Speakers can be corrected once the call is COMPLETED.")
    known = {str(s["speakerId"]) for s in locked.speakers}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ProblemError(
            400,
            "validation_failed",
            f"Unknown speaker id(s): {', '.join(unknown)}.",
            errors={"speakers": [f"Unknown speaker id {u!r}." for u in unknown]},
        )
    speakers = []
    for speaker in locked.speakers:
        speaker = dict(speaker)
        new_name = names.get(str(speaker["speakerId"]))
        if new_name is not None:
            speaker.update(name=new_name, confidence=1.0, source="user")
            TranscriptSegment.objects.filter(
                transcription_id=locked.transcription_id, speaker_label=speaker["label"]
            ).update(speaker_name=new_name)
            ActionItem.objects.filter(call=locked, owner_speaker_id=speaker["speakerId"]).update(
                owner_name=new_name, updated_at=timezone.now()
            )
        speakers.append(speaker)
    locked.speakers = speakers
    locked.updated_at = timezone.now()
    locked.save(update_fields=["speakers", "updated_at"])
    return locked


def action_item_update(*, item: ActionItem, done: bool) -> ActionItem:
    item.done = done
    item.updated_at = timezone.now()
    item.save(update_fields=["done", "updated_at"])
    return item


# --- Deleting ---------------------------------------------------------------------------------------


class CallDeleteFailed(Exception):
    """Storage refused to delete the call's object; the call is kept (nothing is lost, retry later)."""


def uploaded_call_delete(*, call: UploadedCall, actor: str) -> None:
    """Delete the stored object first, then the rows (media entry, transcription, call, action items);
    `uploaded_call_deleted` names the actor (scaiwave.audit).

    Raises CallDeleteFailed when storage fails: the rows stay so the delete can be retried. An object deleted
    whose rows then failed to go is an orphan the media sweeper removes.
    """
    entry = MediaEntry.objects.filter(pk=call.media_entry_id).first() if call.media_entry_id else None
    if entry is not None:
        try:
            media_entry_delete(entry=entry)
        except Exception as exc:
            logger.warning("could not delete a call's media", extra={"call_id": str(call.pk)}, exc_info=True)
            raise CallDeleteFailed(str(exc)) from exc
    with transaction.atomic():
        if call.transcription_id:
            Transcription.objects.filter(pk=call.transcription_id).delete()
        deleted, _ = UploadedCall.objects.filter(pk=call.pk).delete()  # action items cascade
        if deleted:
            deletion_record(tenant=call.tenant, type="uploaded_call_deleted", object_id=str(call.pk), actor=actor)


def uploaded_calls_delete_bulk(*, owner: TenantUser, call_ids: list[str], actor: str) -> dict[str, Any]:
    """Delete many of one user's calls: {"deleted": n, "missing": n, "failed": [{"callId", "reason"}]}."""
    from transcription.analysis.selectors import uploaded_calls_by_ids

    unique_ids = list(dict.fromkeys(call_ids))
    found = uploaded_calls_by_ids(owner=owner, call_ids=unique_ids)
    deleted = 0
    failed: list[dict[str, str]] = []
    for call in found.values():
        try:
            uploaded_call_delete(call=call, actor=actor)
            deleted += 1
        except CallDeleteFailed:
            failed.append({"callId": str(call.pk), "reason": "storage_unavailable"})
    return {"deleted": deleted, "missing": len(unique_ids) - len(found), "failed": failed}


def uploaded_calls_enforce_retention(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Beat: delete calls (and their artifacts) older than their tenant's retention_days (0 keeps all)."""
    moment = now or timezone.now()
    deleted = failed = 0
    for tenant in Tenant.objects.filter(retention_days__gt=0).only("pk", "retention_days"):
        cutoff = moment - timedelta(days=tenant.retention_days)
        for call in UploadedCall.objects.filter(tenant=tenant, created_at__lt=cutoff).order_by("created_at")[:batch]:
            try:
                uploaded_call_delete(call=call, actor=SYSTEM)
                deleted += 1
            except CallDeleteFailed:
                failed += 1
                continue
            failpoint("analysis.enforce_retention.deleted")  # one call gone (object, then rows); the rest not yet
    return {"deleted": deleted, "failed": failed}
