"""Benchmark: LiveKit tokens per second through `POST /v1/token` over real HTTP.

The server runs in the production configuration: uvicorn ASGI workers (uvloop, httptools), PostgreSQL, and Redis
when REDIS_URL is set (throttling and cache). The load comes from separate client processes on keep-alive
connections. The same run also measures raw `livekit.api.AccessToken(...).to_jwt()` in one process, which is the
ceiling for one core.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scaiwave_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/token_mint.py --seconds 10 --workers 1 --connections 32

The script migrates the database, creates a throw-away tenant, starts its own server on a free loopback port,
and stops it at the end. Each phase is bounded by --seconds. It prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# `--fresh-connections` runs the server with this very module as DJANGO_SETTINGS_MODULE: the production settings
# with CONN_MAX_AGE=0. Under ASGI each request runs in its own thread, so persistent connections (CONN_MAX_AGE=60
# in scaiwave.settings) are never reused and pile up until PostgreSQL refuses new clients.
if os.environ.get("SCAIWAVE_BENCH_FRESH_CONNECTIONS") == "1":
    from scaiwave.settings import *  # noqa: F403

    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

BENCH_LIVEKIT_KEY = "benchkey"
BENCH_LIVEKIT_SECRET = "bench-livekit-secret-that-is-long-enough-for-hs256"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    os.environ.setdefault("LIVEKIT_API_KEY", BENCH_LIVEKIT_KEY)
    os.environ.setdefault("LIVEKIT_API_SECRET", BENCH_LIVEKIT_SECRET)
    import django

    django.setup()
    from django.conf import settings

    if "postgresql" not in str(settings.DATABASES["default"]["ENGINE"]):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the production configuration).")
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_tenant(prefix: str) -> tuple[Any, str]:
    from scaiwave.services import tenant_create

    return tenant_create(name=f"{prefix}-{int(time.time() * 1000)}")


class Server:
    """`uvicorn scaiwave.asgi:application` with N workers on a free loopback port."""

    def __init__(self, workers: int, env: dict[str, str] | None = None, *, fresh_connections: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {
            **os.environ,
            "LIVEKIT_API_KEY": os.environ.get("LIVEKIT_API_KEY", BENCH_LIVEKIT_KEY),
            "LIVEKIT_API_SECRET": os.environ.get("LIVEKIT_API_SECRET", BENCH_LIVEKIT_SECRET),
            "LOG_LEVEL": "warning",
            **(env or {}),
        }
        if fresh_connections:
            self.env["SCAIWAVE_BENCH_FRESH_CONNECTIONS"] = "1"
            self.env["DJANGO_SETTINGS_MODULE"] = "bench.token_mint"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [
            sys.executable, "-m", "uvicorn", "scaiwave.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("the server did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# --- A small keep-alive HTTP/1.1 load generator (one asyncio loop per process) ---------------------


@dataclass
class LoadResult:
    ok: int
    errors: int
    latencies_ms: list[float]
    statuses: dict[int, int]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _connection(
    port: int, requests: list[bytes], deadline: float, result: LoadResult, expect: int, start_index: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = start_index
    try:
        while time.monotonic() < deadline and (index - start_index) < len(requests):
            payload = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            writer.write(payload)
            status, _ = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == expect:
                result.ok += 1
            else:
                result.errors += 1
    except (OSError, asyncio.IncompleteReadError):
        result.errors += 1
    finally:
        writer.close()


def _load_process(
    port: int, requests: list[bytes], connections: int, seconds: float, expect: int, offset: int, out: Any
) -> None:
    import uvloop

    result = LoadResult(0, 0, [], {})

    async def main() -> None:
        deadline = time.monotonic() + seconds
        share = max(1, len(requests) // connections)
        await asyncio.gather(
            *(_connection(port, requests, deadline, result, expect, offset + i * share) for i in range(connections))
        )

    uvloop.run(main())
    out.put((result.ok, result.errors, result.latencies_ms, result.statuses))


def run_load(
    port: int, requests: list[bytes], *, processes: int, connections: int, seconds: float, expect: int
) -> tuple[LoadResult, float]:
    """Send `requests` round-robin from `processes` x `connections` keep-alive connections for up to
    `seconds`. Returns the merged result and the wall time."""
    queue: mp.Queue[Any] = mp.Queue()
    per_process = max(1, connections // processes)
    chunk = len(requests) // processes
    workers = [
        mp.Process(
            target=_load_process,
            args=(port, requests[i * chunk : (i + 1) * chunk] or requests, per_process, seconds, expect, 0, queue),
        )
        for i in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    merged = LoadResult(0, 0, [], {})
    for _ in workers:
        ok, errors, latencies, statuses = queue.get(timeout=seconds + 60)
        merged.ok += ok
        merged.errors += errors
        merged.latencies_ms.extend(latencies)
        for status, count in statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return merged, elapsed


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def raw_mint_rate(seconds: float) -> float:
    from livekit import api

    grants = api.VideoGrants(room_join=True, room="bench-room", can_publish=True, can_subscribe=True)
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while time.perf_counter() < deadline:
            (
                api.AccessToken(BENCH_LIVEKIT_KEY, BENCH_LIVEKIT_SECRET)
                .with_identity(f"user-{count}")
                .with_name("Bench")
                .with_grants(grants)
                .with_ttl(timedelta(hours=1))
                .to_jwt()
            )
            count += 1
    return count / (time.perf_counter() - started)


def token_requests(api_secret: str, count: int) -> list[bytes]:
    requests = []
    for i in range(count):
        body = json.dumps(
            {"roomId": f"bench-{i % 50}", "userId": f"user-{i}", "name": f"User {i}", "role": "participant"}
        ).encode()
        requests.append(
            b"POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {api_secret}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measured phase")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive client connections in all")
    parser.add_argument("--client-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--fresh-connections", action="store_true", help="serve with CONN_MAX_AGE=0 (see top)")
    args = parser.parse_args()

    django_setup()
    _tenant, api_secret = make_tenant("bench-token")
    requests = token_requests(api_secret, 200_000)
    raw = raw_mint_rate(min(args.seconds, 3.0))
    with Server(args.workers, fresh_connections=args.fresh_connections) as server:
        run_load(server.port, requests[:2000], processes=1, connections=8, seconds=1.5, expect=200)  # warm-up
        result, elapsed = run_load(
            server.port,
            requests,
            processes=args.client_processes,
            connections=args.connections,
            seconds=args.seconds,
            expect=200,
        )
    rate = result.ok / elapsed
    print(f"raw AccessToken.to_jwt() in one process: {raw:,.0f} tokens/s")
    print(
        f"POST /v1/token over HTTP: {rate:,.0f} requests/s with {args.workers} uvicorn worker(s) "
        f"({rate / args.workers:,.0f}/s per worker), {result.ok} ok, {result.errors} errors, "
        f"statuses {result.statuses}"
    )
    print(
        f"latency ms: p50 {percentile(result.latencies_ms, 0.5):.1f}, p99 {percentile(result.latencies_ms, 0.99):.1f}"
        f" ({args.connections} connections, {args.client_processes} client process(es), {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
