"""Uploads never sit in the server's memory: measured on the production server (uvicorn, ASGI) as a subprocess.

The server's resident set size is sampled from /proc every 10 ms while a 51 MB upload (rejected, 413) and a
45 MB recording (accepted, streamed to storage) are sent; the peak may grow by a few MB, not by the file's size.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from transcription.models import UploadedCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MB = 1024 * 1024
# How much the server may grow while receiving a file: far below the files' 45-51 MB.
MAX_GROWTH = 20 * MB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _silent_wav(path: Path, size: int) -> Path:
    """A valid 16-bit mono 16 kHz WAV of about `size` bytes (silence), written without holding it in memory."""
    data = size - 44
    header = (
        b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    with path.open("wb") as out:
        out.write(header + b"data" + struct.pack("<I", data))
        block = b"\x00" * MB
        remaining = data
        while remaining:
            out.write(block[: min(MB, remaining)])
            remaining -= min(MB, remaining)
    return path


def _multipart(path: Path, metadata: dict[str, str]) -> tuple[str, list[bytes | Path]]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{json.dumps(metadata)}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="call.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return boundary, [head, path, f"\r\n--{boundary}--\r\n".encode()]


def _post_streaming(port: int, token: str, path: Path) -> tuple[int, dict[str, object]]:
    """POST the file as multipart, read from disk in 64 KiB blocks (the client holds no copy either)."""
    boundary, parts = _multipart(path, {"contactName": "Ravi"})
    length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in parts)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("POST", "/api/calls/analyze")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    try:
        for part in parts:
            if isinstance(part, Path):
                with part.open("rb") as source:
                    while block := source.read(64 * 1024):
                        conn.send(block)
            else:
                conn.send(part)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered early; its answer is still readable
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    port = _free_port()
    media = tmp_path / "media"
    db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(media),
        "STT_MODEL": "tiny.en",
        "DEBUG": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "scaiwave.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("uvicorn did not start")
        yield port, process.pid, media
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_uploads_of_45_and_51_mb_keep_the_servers_memory_flat(acme, server, tmp_path: Path) -> None:
    port, pid, media = server
    token = acme.user_token("alice", name="Alice")
    too_big = _silent_wav(tmp_path / "big.wav", 51 * MB)
    fits = _silent_wav(tmp_path / "fits.wav", 45 * MB)
    _post_streaming(port, token, _silent_wav(tmp_path / "warm.wav", 64 * 1024))  # warm the code paths up
    baseline = _rss(pid)

    with RssSampler(pid) as rejected:
        status, body = _post_streaming(port, token, too_big)
    assert status == 413 and body["code"] == "payload_too_large"
    assert rejected.peak - baseline < MAX_GROWTH, f"grew {(rejected.peak - baseline) / MB:.1f} MB"

    with RssSampler(pid) as accepted:
        status, body = _post_streaming(port, token, fits)
    assert status == 202, body
    assert accepted.peak - baseline < MAX_GROWTH, f"grew {(accepted.peak - baseline) / MB:.1f} MB"
    print(
        f"server RSS baseline {baseline / MB:.1f} MB; peak growth: 51 MB rejected "
        f"{(rejected.peak - baseline) / MB:.1f} MB, 45 MB accepted {(accepted.peak - baseline) / MB:.1f} MB"
    )
    call = UploadedCall.objects.select_related("media_entry").get(pk=str(body["callId"]))
    assert call.media_entry is not None and call.media_entry.size == 45 * MB
    assert (media / call.media_entry.key).stat().st_size == 45 * MB
    stored = sorted(p.name for p in media.rglob("*.wav"))
    assert len(stored) == 2  # the warm-up and the 45 MB file; nothing of the rejected one
