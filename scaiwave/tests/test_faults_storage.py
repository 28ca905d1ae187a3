"""Storage faults on the upload path (POST /api/calls/analyze streams the file into storage):
the object store stops answering (a real moto S3 server process, stopped), and the local disk fills up
(a 64 KiB tmpfs mounted for the test). Either way: a 503 problem, no MediaEntry, no UploadedCall, no
half-written object left behind; and the next upload works once storage is back.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from livekit_emulator.testing import free_port
from recordings.models import MediaEntry
from scaiwave.tests.fault_stack import wait_until
from transcription.models import UploadedCall

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

BUCKET = "faults-media"
KEY, SECRET = "faults-access-key", "faults-secret-key"


def _tone_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(n / 3))) for n in range(int(seconds * 8000))))
    return buffer.getvalue()


def _upload(client: Any, content: bytes) -> Any:
    body = io.BytesIO(content)
    body.name = "call.wav"
    return client.post("/api/calls/analyze", {"file": body}, format="multipart")


def _assert_nothing_kept() -> None:
    assert not MediaEntry.objects.exists()
    assert not UploadedCall.objects.exists()


@pytest.fixture(autouse=True)
def _speech_model(settings: Any) -> None:
    settings.STT_MODEL = "tiny.en"


class MotoProcess:
    """moto's S3 server as its own process (so it can be stopped like a real store going away)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        moto = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        client = self.client()

        def bucket_ready() -> bool:
            try:
                client.create_bucket(Bucket=BUCKET)
            except Exception as exc:  # not listening yet, or already there
                return "BucketAlready" in type(exc).__name__ or "BucketAlready" in str(exc)
            return True

        wait_until(bucket_ready, 20, what="moto S3 up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            region_name="us-east-1")  # fmt: skip

    def keys(self) -> list[str]:
        return [item["Key"] for item in self.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.fixture
def moto(settings: Any) -> Iterator[MotoProcess]:
    server = MotoProcess()
    server.start()
    settings.S3_BUCKET = BUCKET
    settings.S3_ENDPOINT_URL = server.url
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": server.url, "access_key": KEY, "secret_key": SECRET,
                        "region_name": "us-east-1", "addressing_style": "path", "file_overwrite": False},
        },
    }  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def test_object_store_down_at_upload_is_503_and_nothing_is_half_stored(acme, moto) -> None:
    alice = acme.user("alice")
    working = _upload(alice, _tone_wav(1.0))
    assert working.status_code == 202, working.content  # the store works
    assert len(moto.keys()) == 1
    UploadedCall.objects.all().delete()
    MediaEntry.objects.all().delete()
    moto.client().delete_object(Bucket=BUCKET, Key=moto.keys()[0])

    moto.stop()
    response = _upload(alice, _tone_wav(1.0))
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "storage_unavailable"
    _assert_nothing_kept()

    moto.start()  # back (empty, as moto keeps nothing): the next upload works without a restart
    assert moto.keys() == []
    assert _upload(alice, _tone_wav(1.0)).status_code == 202
    assert len(moto.keys()) == 1 and MediaEntry.objects.count() == 1


@pytest.fixture
def full_disk(settings: Any) -> Iterator[Path]:
    """MEDIA on a 64 KiB tmpfs, 40 KiB of it already used. Needs root (mount); skipped otherwise."""
    root = Path(tempfile.mkdtemp(prefix="scaiwave-faults-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (root / "filler").write_bytes(b"\0" * 40 * 1024)
        settings.S3_BUCKET = ""
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
        }
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_disk_full_at_upload_is_503_and_no_partial_file_or_entry_is_left(acme, full_disk: Path) -> None:
    alice = acme.user("alice")
    response = _upload(alice, _tone_wav(3.0))  # 48 KB into 24 KiB of free space
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "storage_unavailable"
    _assert_nothing_kept()
    assert sorted(p.name for p in full_disk.rglob("*") if p.is_file()) == ["filler"]

    os.remove(full_disk / "filler")  # space again: works at once
    assert _upload(alice, _tone_wav(1.0)).status_code == 202
    assert MediaEntry.objects.count() == 1
