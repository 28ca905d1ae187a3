"""Benchmark: LiveKit tokens per second through `POST /v1/token` over real HTTP.

The server runs in the production configuration: `uvicorn scaiwave.asgi:application` workers with uvloop and
httptools, PostgreSQL, Redis when REDIS_URL is set (throttling), and SCAIWAVE_MODE=production behind a TLS proxy
(requests carry `X-Forwarded-Proto: https`, answers HSTS; `--mode embedded` for the defaults). `POST /v1/token` is
answered by the pure-ASGI fast path (rooms/token_asgi.py) unless `--fast-path off`, which sends it through Django
and DRF. The same run measures raw `livekit.api.AccessToken(...).to_jwt()` in one process, the ceiling for one
core.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scaiwave_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/token_mint.py --seconds 10 --workers 1 --pin

The load comes from the small asyncio load generator below (wrk is not installed here), in separate processes on
keep-alive connections; it reports the CPU time it used. `--pin` puts the server on the first `--workers` cores and
the load generator on the remaining ones (on all of them when none remain), with `taskset`.

Besides requests per wall-clock second, the script reads the CPU time the server's processes used during the
measured phase (/proc), and prints requests per CPU-second of server: on a shared machine that is the per-core
rate, whatever else was running. The load average is printed before and after.

The script creates the database if it is missing and migrates it, creates a throw-away tenant, starts its own
server on a free loopback port, and stops it at the end. Each phase is bounded by --seconds; `--rounds N` measures
N phases against the same server (each with the raw minting rate and the load average just before it) and prints
the best and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
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
    from bench.database import ensure_database

    ensure_database(os.environ.get("DATABASE_URL", ""))
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

    def __init__(
        self,
        workers: int,
        env: dict[str, str] | None = None,
        *,
        fresh_connections: bool = False,
        cpus: list[int] | None = None,
    ) -> None:
        self.cpus = cpus
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
        if self.cpus:
            command = ["taskset", "-c", ",".join(map(str, self.cpus)), *command]
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

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the server's processes (the master and its workers)."""
        assert self.process is not None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[2] is the process group (field 5 of stat); utime and stime are fields 14 and 15.
            if int(fields[2]) == self.process.pid:
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

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


class _KeepAliveClient(asyncio.Protocol):
    """One connection sending `requests` one after another (no pipelining) until the deadline. A Protocol
    rather than streams: the generator should take as little CPU from the server as it can."""

    def __init__(self, requests: list[bytes], start: int, deadline: float, result: LoadResult, expect: int) -> None:
        self.requests = requests
        self.index = start
        self.deadline = deadline
        self.result = result
        self.expect = expect
        self.buffer = b""
        self.sent_at = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport subclass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if time.monotonic() >= self.deadline:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests[self.index % len(self.requests)])
        self.index += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for line in self.buffer[:end].split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        self.result.latencies_ms.append((time.perf_counter() - self.sent_at) * 1000)
        self.result.statuses[status] = self.result.statuses.get(status, 0) + 1
        if status == self.expect:
            self.result.ok += 1
        else:
            self.result.errors += 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or time.monotonic() < self.deadline:
            self.result.errors += 1  # the server closed a keep-alive connection before the end
        if not self.done.done():
            self.done.set_result(None)


def _load_process(
    port: int,
    requests: list[bytes],
    connections: int,
    seconds: float,
    expect: int,
    offset: int,
    out: Any,
    cpus: list[int] | None = None,
) -> None:
    import uvloop

    if cpus:
        os.sched_setaffinity(0, cpus)
    result = LoadResult(0, 0, [], {})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + seconds
        share = max(1, len(requests) // connections)
        clients = []
        for i in range(connections):
            factory = functools.partial(_KeepAliveClient, requests, offset + i * share, deadline, result, expect)
            _, client = await loop.create_connection(factory, "127.0.0.1", port)
            clients.append(client)
        await asyncio.gather(*(client.done for client in clients))

    started = time.process_time()
    uvloop.run(main())
    out.put((result.ok, result.errors, result.latencies_ms, result.statuses, time.process_time() - started))


def run_load(
    port: int,
    requests: list[bytes],
    *,
    processes: int,
    connections: int,
    seconds: float,
    expect: int,
    cpus: list[int] | None = None,
) -> tuple[LoadResult, float, float]:
    """Send `requests` round-robin from `processes` x `connections` keep-alive connections for up to
    `seconds`. Returns the merged result, the wall time and the CPU seconds the load generator used."""
    queue: mp.Queue[Any] = mp.Queue()
    per_process = max(1, connections // processes)
    chunk = len(requests) // processes
    workers = [
        mp.Process(
            target=_load_process,
            args=(port, requests[i * chunk : (i + 1) * chunk] or requests, per_process, seconds, expect, 0, queue),
            kwargs={"cpus": cpus},
        )
        for i in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    merged = LoadResult(0, 0, [], {})
    client_cpu = 0.0
    for _ in workers:
        ok, errors, latencies, statuses, cpu = queue.get(timeout=seconds + 60)
        merged.ok += ok
        merged.errors += errors
        merged.latencies_ms.extend(latencies)
        client_cpu += cpu
        for status, count in statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return merged, elapsed, client_cpu


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


def token_requests(api_secret: str, count: int, path: str = "/v1/token", *, via_tls_proxy: bool = False) -> list[bytes]:
    proxy_header = "X-Forwarded-Proto: https\r\n" if via_tls_proxy else ""
    requests = []
    for i in range(count):
        body = json.dumps(
            {"roomId": f"bench-{i % 50}", "userId": f"user-{i}", "name": f"User {i}", "role": "participant"}
        ).encode()
        requests.append(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{proxy_header}".encode()
            + f"X-API-Key: {api_secret}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return requests


# SCAIWAVE_MODE=production behind a TLS-terminating proxy, as deployed: HTTPS is required (the proxy says so in
# X-Forwarded-Proto) and answers carry HSTS.
PRODUCTION_ENV = {
    "SCAIWAVE_MODE": "production",
    "BEHIND_TLS_PROXY": "true",
    "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measured phase")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive client connections in all")
    parser.add_argument("--client-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--pin", action="store_true", help="server on the first --workers cores, load on the rest")
    parser.add_argument("--path", default="/v1/token", choices=["/v1/token", "/v1/token/refresh"])
    parser.add_argument("--fast-path", default="on", choices=["on", "off"], help="off: through Django and DRF")
    parser.add_argument(
        "--mode", default="production", choices=["production", "embedded"], help="production: behind a TLS proxy"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measured phases against the same server")
    parser.add_argument("--fresh-connections", action="store_true", help="serve with CONN_MAX_AGE=0 (see top)")
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    server_cpus = cores[: args.workers] if args.pin else None
    client_cpus = (cores[args.workers :] or cores) if args.pin else None
    placement = f"server on cores {server_cpus}, load on {client_cpus}" if args.pin else "not pinned"
    django_setup()
    _tenant, api_secret = make_tenant("bench-token")
    requests = token_requests(api_secret, 200_000, args.path, via_tls_proxy=args.mode == "production")
    env = {"TOKEN_FAST_PATH": "true" if args.fast_path == "on" else "false"}
    if args.mode == "production":
        env.update(PRODUCTION_ENV)
    print(
        f"POST {args.path} over HTTP, {args.mode} mode, fast path {args.fast_path}, {args.workers} uvicorn "
        f"worker(s), {args.connections} connections from {args.client_processes} load process(es), {placement}, "
        f"{os.cpu_count()} cores"
    )
    rates = []
    with Server(args.workers, env, fresh_connections=args.fresh_connections, cpus=server_cpus) as server:
        run_load(server.port, requests[:2000], processes=1, connections=8, seconds=1.5, expect=200, cpus=client_cpus)
        for round_number in range(1, args.rounds + 1):
            before = load_average()
            # The ceiling, measured on the server's core while the server is idle, just before its round.
            os.sched_setaffinity(0, server_cpus[:1] if server_cpus else cores)
            raw = raw_mint_rate(min(args.seconds, 3.0))
            os.sched_setaffinity(0, cores)
            server_cpu = server.cpu_seconds()
            result, elapsed, client_cpu = run_load(
                server.port,
                requests,
                processes=args.client_processes,
                connections=args.connections,
                seconds=args.seconds,
                expect=200,
                cpus=client_cpus,
            )
            server_cpu = server.cpu_seconds() - server_cpu
            rate = result.ok / elapsed
            rates.append(rate / args.workers)
            print(
                f"round {round_number}: {rate:,.0f} requests/s = {rate / args.workers:,.0f}/s per worker; "
                f"{result.ok} ok, {result.errors} errors {result.statuses}; p50 "
                f"{percentile(result.latencies_ms, 0.5):.1f} ms, p99 {percentile(result.latencies_ms, 0.99):.1f} ms; "
                f"server {result.ok / max(server_cpu, 1e-9):,.0f} requests per CPU-second "
                f"({server_cpu / elapsed:.2f} cores busy), load generator {client_cpu:.2f} CPU-s; "
                f"raw AccessToken.to_jwt() {raw:,.0f}/s; load average {before} -> {load_average()}"
            )
    if len(rates) > 1:
        median = statistics.median(rates)
        print(f"per worker: best {max(rates):,.0f}/s, median {median:,.0f}/s over {len(rates)} rounds")


if __name__ == "__main__":
    main()
