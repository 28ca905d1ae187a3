"""Media entries: every stored file, written and deleted in one way, and the orphan sweep.

An object is written before its row and deleted before its row: a crash between the two
leaves an object without a row (the sweeper removes it), never a row without an object.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from recordings import storage
from recordings.models import MediaEntry, Recording, RecordingEgress
from scaiwave.api.errors import ProblemError
from scaiwave.audit import deletion_record
from scaiwave.failpoints import failpoint
from scaiwave.models import Tenant

logger = logging.getLogger("scaiwave.recordings")


# --- Media entries -----------------------------------------------------------------------------


def media_entry_create_from_stream(
    *,
    tenant: Tenant,
    key: str,
    stream: IO[bytes],
    content_type: str,
    source: str,
    max_bytes: int | None = None,
    recording: Recording | None = None,
    duration_seconds: float | None = None,
) -> MediaEntry:
    """Store a stream under `key` and record it, computing size and sha256 as it streams.

    The stream is read once, in chunks; it is never held in memory. Raises ProblemError 413
    `file_too_large` past `max_bytes` (the partial object is removed) and 400 `file_empty`
    for an empty stream. The stored key may differ from `key` if that name was taken.
    """
    reader = storage.MeteredReader(stream, max_bytes=max_bytes, content_type=content_type)
    try:
        stored_key = default_storage.save(key, reader)  # type: ignore[arg-type]  # read()/chunks() suffice
    except storage.FileTooLarge as exc:
        _delete_object_quietly(key)
        raise ProblemError(413, "file_too_large", f"The file is larger than {exc.max_bytes} bytes.") from None
    if reader.size == 0:
        _delete_object_quietly(stored_key)
        raise ProblemError(400, "file_empty", "The file is empty.")
    try:
        return media_entry_register(
            tenant=tenant,
            key=stored_key,
            content_type=content_type,
            size=reader.size,
            sha256=reader.sha256,
            source=source,
            recording=recording,
            duration_seconds=duration_seconds,
        )
    except BaseException:
        _delete_object_quietly(stored_key)
        raise


def media_entry_register(
    *,
    tenant: Tenant,
    key: str,
    content_type: str,
    size: int,
    sha256: str,
    source: str,
    recording: Recording | None = None,
    duration_seconds: float | None = None,
) -> MediaEntry:
    """Record an object already written to storage under `key` (by a stream above, by an upload handler
    that streamed it, or by egress). The object comes first, then the row: the caller deletes the object
    if this raises, or leaves it to the orphan sweeper."""
    return MediaEntry.objects.create(
        tenant=tenant,
        key=key,
        content_type=content_type,
        size=size,
        sha256=sha256,
        source=source,
        recording=recording,
        duration_seconds=duration_seconds,
    )


def media_entry_delete(*, entry: MediaEntry, actor: str = "") -> None:
    """Delete the stored object, then the row (document 002's rule). A storage error keeps the row.

    With an `actor` (a delete of the entry on its own, e.g. from the admin) `media_deleted` names them; a
    recording's or an uploaded call's delete records itself."""
    default_storage.delete(entry.key)
    if actor:
        deletion_record(
            tenant=entry.tenant,
            type="media_deleted",
            object_id=entry.pk,
            actor=actor,
            key=entry.key,
            source=entry.source,
        )
    entry.delete()


def _delete_object_quietly(key: str) -> None:
    try:
        default_storage.delete(key)
    except Exception:
        logger.warning("could not delete object", extra={"key": key}, exc_info=True)


def media_sweep_orphans(*, grace_seconds: float | None = None) -> dict[str, int]:
    """Remove objects under recordings/ that no row knows (older than the grace period), and flag
    rows whose object vanished (`missing_since`). Returns counts."""
    grace = settings.MEDIA_SWEEP_GRACE if grace_seconds is None else grace_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    known = set(MediaEntry.objects.values_list("key", flat=True))
    # Files an egress is still writing (or that wait for registration) are not orphans.
    known |= set(
        RecordingEgress.objects.filter(recording__status__in=Recording.PENDING_STATUSES)
        .exclude(file_key="")
        .values_list("file_key", flat=True)
    )
    known |= set(Recording.objects.filter(status__in=Recording.PENDING_STATUSES).values_list("storage_key", flat=True))
    removed = 0
    for key in storage.list_keys(storage.RECORDINGS_PREFIX):
        if key in known:
            continue
        modified = storage.modified_at(key)
        if modified is not None and modified > cutoff:
            continue
        _delete_object_quietly(key)
        removed += 1
        failpoint("recordings.sweep_media.removed")  # one orphan gone, the rest (and the flagging) not yet
    flagged = 0
    for entry in MediaEntry.objects.filter(missing_since__isnull=True, created_at__lte=cutoff).iterator():
        if storage.object_size(entry.key) is None:
            MediaEntry.objects.filter(pk=entry.pk, missing_since__isnull=True).update(missing_since=timezone.now())
            logger.warning("media object missing from storage", extra={"media_entry": entry.pk, "key": entry.key})
            flagged += 1
    return {"objects_removed": removed, "entries_flagged": flagged}
