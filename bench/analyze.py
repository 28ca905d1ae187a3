"""Uploaded-call analysis benchmark (issue 11): upload throughput and memory, bulk status latency, end-to-end speed.

Starts ScaiWave under uvicorn (one process, the production ASGI stack; PostgreSQL + Redis) and measures:

1. upload: CONCURRENT clients each POST a SIZE_MB recording to /api/calls/analyze at once (read from disk in
   64 KiB blocks); wall time -> MB/s, and the server's peak resident memory (sampled from /proc every 10 ms)
   against its idle size;
2. bulk status: CALLS stored calls for one user; GET /api/calls/status?ids=<100 random ids> ROUNDS times in a
   row -> p50 / p99 latency;
3. end to end: E2E_CALLS recordings of E2E_SECONDS of speech (LibriVox clips, pocketsphinx-testdata) uploaded at
   once, processed by a Celery worker on the `transcription` queue with 2 processes (the machine's 2 cores),
   until every call is COMPLETED -> minutes of audio analysed per minute of wall time (STT_MODEL applies).

    .venv/bin/python bench/analyze.py [--concurrent 10] [--size-mb 50] [--calls 10000] [--rounds 300]
                                      [--e2e-calls 4] [--e2e-seconds 60]

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/scaiwave_analysis_bench, created and
migrated if missing), BENCH_REDIS_URL (default redis://127.0.0.1:6379/11). Files go to a temporary MEDIA_ROOT
that is removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402 - the path is set above

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scaiwave_analysis_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
MB = 1024 * 1024


def setup_django(media: Path) -> None:
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, MEDIA_ROOT=str(media), DEBUG="false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wav_of_size(path: Path, size: int) -> Path:
    """A valid 16 kHz mono WAV of `size` bytes: a quiet tone, written block by block."""
    import numpy as np

    data = size - 44
    header = (
        b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    second = (3000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype("<i2").tobytes()
    with path.open("wb") as out:
        out.write(header + b"data" + struct.pack("<I", data))
        remaining = data
        while remaining:
            block = second[: min(len(second), remaining)]
            out.write(block)
            remaining -= len(block)
    return path


def speech_recording(path: Path, seconds: float) -> Path:
    """LibriVox clips back to back (0.5 s apart) until `seconds` of speech, as 16 kHz mono WAV."""
    clips = sorted(LIBRIVOX.glob("*.wav"))
    if not clips:
        sys.exit("pocketsphinx-testdata is not installed (apt-get install -y pocketsphinx-testdata)")
    listing = path.with_suffix(".txt")
    total, lines = 0.0, []
    while total < seconds:
        for clip in clips:
            lines.append(f"file '{clip}'")
            total += float(
                subprocess.run(
                    ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(clip)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            if total >= seconds:
                break
    listing.write_text("\n".join(lines) + "\n")
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
         "-t", str(seconds), "-ar", "16000", "-ac", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def post_file(port: int, token: str, path: Path) -> tuple[int, dict[str, object]]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
        f"{json.dumps({'contactName': 'Ravi', 'direction': 'OUTGOING'})}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", "/api/calls/analyze")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as source:
        while block := source.read(64 * 1024):
            conn.send(block)
    conn.send(tail)
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, body


def get_json(port: int, token: str, path: str) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body}")
    return body


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "scaiwave.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("uvicorn did not start")


def bench_uploads(port: int, pid: int, token: str, folder: Path, concurrent: int, size_mb: int) -> dict[str, float]:
    from django.conf import settings

    size = min(size_mb * MB, settings.MAX_FILE_SIZE)
    files = [wav_of_size(folder / f"upload-{i}.wav", size) for i in range(concurrent)]
    post_file(port, token, wav_of_size(folder / "warm.wav", 64 * 1024))
    idle = rss(pid)
    statuses: list[int] = []

    def send(path: Path) -> None:
        statuses.append(post_file(port, token, path)[0])

    threads = [threading.Thread(target=send, args=(f,)) for f in files]
    with PeakRss(pid) as peak:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    for f in files:
        f.unlink()
    assert statuses == [202] * concurrent, statuses
    return {
        "uploads": concurrent,
        "file_mb": round(size / MB, 1),
        "seconds": round(elapsed, 2),
        "throughput_mb_s": round(concurrent * size / MB / elapsed, 1),
        "server_idle_rss_mb": round(idle / MB, 1),
        "server_peak_rss_mb": round(peak.peak / MB, 1),
        "server_growth_mb": round((peak.peak - idle) / MB, 1),
    }


def bench_status(port: int, token: str, sub: str, tenant_id: str, calls: int, rounds: int) -> dict[str, float]:
    from scaiwave.models import TenantUser
    from transcription.models import UploadedCall

    owner = TenantUser.objects.get(tenant_id=tenant_id, external_id=sub)
    statuses = [s.value for s in UploadedCall.Status]
    rows = [UploadedCall(tenant_id=tenant_id, owner=owner, status=random.choice(statuses)) for _ in range(calls)]
    UploadedCall.objects.bulk_create(rows, batch_size=2000)
    ids = [str(r.pk) for r in rows]
    latencies = []
    for _ in range(rounds):
        chosen = ",".join(random.sample(ids, 100))
        started = time.perf_counter()
        body = get_json(port, token, f"/api/calls/status?ids={chosen}")
        latencies.append((time.perf_counter() - started) * 1000)
        assert len(body["items"]) == 100  # type: ignore[arg-type]
    latencies.sort()
    return {
        "stored_calls": UploadedCall.objects.filter(owner=owner).count(),
        "rounds": rounds,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
    }


def bench_end_to_end(port: int, token: str, folder: Path, env: dict[str, str], calls: int, seconds: float) -> dict:
    recording = speech_recording(folder / "speech.wav", seconds)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "scaiwave", "worker", "-Q", "transcription", "-c", "2",
         "--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(8)  # the worker boots; each process loads the model on its first job (counted below)
        started = time.perf_counter()
        call_ids = []
        for _ in range(calls):
            status, body = post_file(port, token, recording)
            assert status == 202, body
            call_ids.append(str(body["callId"]))
        while True:
            items = get_json(port, token, f"/api/calls/status?ids={','.join(call_ids)}")["items"]
            states = [i["status"] for i in items]  # type: ignore[attr-defined]
            if all(s in ("COMPLETED", "FAILED") for s in states):
                break
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"not finished after 30 min: {states}")
            time.sleep(1)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    audio_minutes = calls * seconds / 60
    return {
        "calls": calls,
        "audio_seconds_each": seconds,
        "completed": states.count("COMPLETED"),
        "wall_seconds": round(elapsed, 1),
        "audio_minutes_per_minute": round(audio_minutes / (elapsed / 60), 2),
        "stt_model": env.get("STT_MODEL", "base"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--e2e-calls", type=int, default=4)
    parser.add_argument("--e2e-seconds", type=float, default=60.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["upload", "status", "e2e"])
    args = parser.parse_args()

    ensure_database(DATABASE_URL)
    folder = Path(tempfile.mkdtemp(prefix="scaiwave-bench-analyze-"))
    media = folder / "media"
    media.mkdir()
    setup_django(media)
    from scaiwave.testing import make_tenant

    creds = make_tenant(f"bench-{uuid.uuid4().hex[:8]}")
    sub = "bench-user"
    token = creds.user_token(sub, ttl=7200, name="Bench User")
    env = {**os.environ}
    port = free_port()
    server = start_server(port, env)
    results: dict[str, object] = {}
    try:
        get_json(port, token, "/api/calls?limit=1")  # creates the user row
        if "upload" not in args.skip:
            results["upload"] = bench_uploads(port, server.pid, token, folder, args.concurrent, args.size_mb)
            print(json.dumps({"upload": results["upload"]}), flush=True)
        if "status" not in args.skip:
            results["status"] = bench_status(port, token, sub, creds.tenant.pk, args.calls, args.rounds)
            print(json.dumps({"status": results["status"]}), flush=True)
        if "e2e" not in args.skip:
            # Only this run's calls: the upload phase's queued jobs are dropped first.
            import redis

            redis.Redis.from_url(REDIS_URL).delete("transcription")
            results["e2e"] = bench_end_to_end(port, token, folder, env, args.e2e_calls, args.e2e_seconds)
            print(json.dumps({"e2e": results["e2e"]}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        import redis

        redis.Redis.from_url(REDIS_URL).delete("transcription")
        from scaiwave.models import Tenant

        Tenant.objects.filter(pk=creds.tenant.pk).delete()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
