"""MediaEntry services (streamed storage with size and checksum, delete order, orphan sweep), ranges, lifecycle."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest
from django.core.files.storage import default_storage

from recordings import services
from recordings.models import InvalidRecordingTransition, MediaEntry, Recording
from recordings.views import parse_range
from scaiwave.api.errors import ProblemError

pytestmark = pytest.mark.django_db

PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk


class ReadOnce(io.RawIOBase):
    """A stream that cannot seek, like a request body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


@pytest.mark.parametrize("backend", ["local_storage", "s3_storage"])
def test_a_stream_is_stored_with_its_size_and_sha256(acme, backend, request):
    request.getfixturevalue(backend)

    entry = services.media_entry_create_from_stream(
        tenant=acme.tenant,
        key="uploads/acme/call.wav",
        stream=ReadOnce(PAYLOAD),
        content_type="audio/wav",
        source=MediaEntry.Source.UPLOAD,
        max_bytes=10 * 1024 * 1024,
    )

    assert entry.size == len(PAYLOAD)
    assert entry.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    with default_storage.open(entry.key, "rb") as stored:
        assert stored.read() == PAYLOAD


@pytest.mark.parametrize("backend", ["local_storage", "s3_storage"])
def test_a_stream_over_the_limit_is_413_and_leaves_no_object(acme, backend, request):
    request.getfixturevalue(backend)

    with pytest.raises(ProblemError) as raised:
        services.media_entry_create_from_stream(
            tenant=acme.tenant,
            key="uploads/acme/big.wav",
            stream=ReadOnce(PAYLOAD),
            content_type="audio/wav",
            source=MediaEntry.Source.UPLOAD,
            max_bytes=1024 * 1024,
        )

    assert raised.value.status == 413 and raised.value.code == "file_too_large"
    assert not default_storage.exists("uploads/acme/big.wav")
    assert not MediaEntry.objects.exists()


def test_an_empty_stream_is_refused(acme, local_storage):
    with pytest.raises(ProblemError) as raised:
        services.media_entry_create_from_stream(
            tenant=acme.tenant,
            key="uploads/acme/empty.wav",
            stream=ReadOnce(b""),
            content_type="audio/wav",
            source=MediaEntry.Source.UPLOAD,
        )
    assert raised.value.code == "file_empty"
    assert not default_storage.exists("uploads/acme/empty.wav")


def test_delete_removes_the_object_and_then_the_row(acme, s3_storage):
    entry = services.media_entry_create_from_stream(
        tenant=acme.tenant, key="uploads/a.wav", stream=ReadOnce(b"abc"), content_type="audio/wav", source="upload"
    )
    services.media_entry_delete(entry=entry)
    assert not default_storage.exists("uploads/a.wav")
    assert not MediaEntry.objects.exists()


def test_the_sweeper_removes_old_orphans_keeps_young_ones_and_flags_missing_objects(acme, local_storage):
    old = local_storage / "recordings" / "standup" / "20200101T000000000Z.mp4"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"orphan")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = local_storage / "recordings" / "standup" / "20991231T000000000Z.mp4"
    young.write_bytes(b"just written")
    kept = services.media_entry_create_from_stream(
        tenant=acme.tenant,
        key="recordings/standup/kept.mp4",
        stream=ReadOnce(b"kept"),
        content_type="video/mp4",
        source="egress",
    )
    vanished = services.media_entry_create_from_stream(
        tenant=acme.tenant,
        key="recordings/standup/vanished.mp4",
        stream=ReadOnce(b"gone"),
        content_type="video/mp4",
        source="egress",
    )
    (local_storage / vanished.key).unlink()

    counts = services.media_sweep_orphans(grace_seconds=3600)
    assert counts == {"objects_removed": 1, "entries_flagged": 0}  # the rows are younger than the grace period
    assert not old.exists() and young.exists() and (local_storage / kept.key).exists()

    counts = services.media_sweep_orphans(grace_seconds=0)
    assert counts["entries_flagged"] == 1
    vanished.refresh_from_db()
    kept.refresh_from_db()
    assert vanished.missing_since is not None and kept.missing_since is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=1000-", False),
        ("bytes=5-2", False),
        ("bytes=-0", False),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        pytest.param("bytes=" + "9" * 5_000 + "-", False, id="bytes=<5000 digits>-"),
        pytest.param("bytes=0-" + "9" * 5_000, (0, 999), id="bytes=0-<5000 digits>"),
    ],
)
def test_range_headers(header, expected):
    assert parse_range(header, 1000) == expected


def test_the_lifecycle_allows_only_forward_moves():
    recording = Recording(status=Recording.Status.STARTING)
    recording.transition_to(Recording.Status.RECORDING)
    assert recording.started_at is not None
    recording.transition_to(Recording.Status.STOPPING)
    recording.transition_to(Recording.Status.PROCESSING)
    recording.transition_to(Recording.Status.READY)
    assert recording.finished_at is not None
    with pytest.raises(InvalidRecordingTransition):
        recording.transition_to(Recording.Status.FAILED)
    failed = Recording(status=Recording.Status.RECORDING)
    failed.transition_to(Recording.Status.FAILED, reason="egress crashed")
    assert failed.failure_reason == "egress crashed" and failed.is_finished
