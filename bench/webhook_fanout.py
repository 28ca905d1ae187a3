"""Outbound webhook fan-out benchmark: events -> Delivery rows -> signed POSTs to local receivers.

    .venv/bin/python bench/webhook_fanout.py [--events 10000] [--endpoints 10] [--workers 4] [--rate 0]
                                             [--producers 1] [--warmup 40]

Real pieces only: PostgreSQL (DATABASE_URL, default a `scaiwave_webhooks_bench` database it creates and
migrates), Redis as the Celery broker (REDIS_URL, default redis://127.0.0.1:6379/3), one Celery worker
with --workers prefork processes, and --endpoints asyncio HTTP receivers on 127.0.0.1 (a separate
process) that answer 204 at once: healthy receivers. Events are emitted through the outbox
(`event_emit`), exactly as the product does. This process also plays beat's webhook sweep every few
seconds. `--warmup` events are sent first and not counted, so that every worker process has started
its threads and connections. `--rate N` paces emission at N events/s (0 = as fast as possible), from
`--producers` threads (a single emitter is slower than the workers; several stand for web processes).
Prints deliveries/s, event-to-delivery latency p50/p99 (event row created -> receiver got it), the
count lost (must be 0), duplicates, CPU per event of the producer and of the workers, and the load
average. Gives up after --timeout seconds. Earlier runs' `bench-*` tenants are deleted first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/scaiwave_webhooks_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


# --- the receivers (run in their own process: `--serve-receivers N`) --------------------------------


class Receiver(asyncio.Protocol):
    """A healthy webhook receiver: HTTP/1.1 keep-alive, answers every POST at once with 204.

    asyncio on one thread, so it keeps up with hundreds of connections; a thread per connection
    (http.server) spent more CPU than the deliveries it measured. Records (webhook-id, path, arrival).
    GET returns everything recorded, as JSON.
    """

    received: list[tuple[str, str, float]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lines = self.buffer[:head_end].decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < head_end + 4 + length:
                return  # the body is still coming
            self.buffer = self.buffer[head_end + 4 + length :]
            if method == "POST":
                Receiver.received.append((headers.get("webhook-id", ""), path, time.time()))
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                payload = json.dumps(Receiver.received).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                self.transport.close()
                return


def serve_receivers(count: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(Receiver, "127.0.0.1", 0, backlog=1024) for _ in range(count)]
        print(json.dumps([server.sockets[0].getsockname()[1] for server in servers]), flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()

    asyncio.run(serve())


# --- the benchmark --------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = unpaced")
    parser.add_argument("--producers", type=int, default=1, help="threads emitting events")
    parser.add_argument(
        "--warmup", type=int, default=40, help="events sent (unpaced, not counted) before the measured ones"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--serve-receivers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receivers:
        serve_receivers(args.serve_receivers)
        return 0

    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DB)
    env.setdefault("REDIS_URL", DEFAULT_REDIS)
    env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    env["DJANGO_SETTINGS_MODULE"] = "scaiwave.settings"
    env["LOG_LEVEL"] = "warning"
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from bench.database import ensure_database

    ensure_database(env["DATABASE_URL"])
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection, transaction

    from scaiwave.celery import app
    from scaiwave.events.services import event_emit
    from scaiwave.models import Event, Tenant
    from scaiwave.services import tenant_create
    from webhooks.models import Delivery
    from webhooks.services import webhook_create
    from webhooks.tasks import sweep

    app.control.purge()  # stale tasks from earlier runs
    # Earlier runs' endpoints point at receivers that are gone: their leftovers would be swept and retried here.
    Tenant.objects.filter(name__startswith="bench-").delete()
    if connection.vendor == "postgresql":  # start from the same table state whether autovacuum runs or not
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE webhooks_delivery, scaiwave_event")
    receivers = subprocess.Popen(
        [sys.executable, __file__, "--serve-receivers", str(args.endpoints)], stdout=subprocess.PIPE, text=True
    )
    assert receivers.stdout is not None
    ports = json.loads(receivers.stdout.readline())
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "scaiwave",
            "worker",
            "-Q",
            "webhooks",
            "-c",
            str(args.workers),
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
            "-n",
            "bench@%h",
        ],
        cwd=ROOT,
        env=env,
    )
    last_sweep = time.monotonic()

    def wait_for(tenant: Tenant, expected: int, deadline: float) -> None:
        nonlocal last_sweep
        while time.time() < deadline:
            if Delivery.objects.filter(tenant=tenant, status=Delivery.Status.DELIVERED).count() >= expected:
                return
            if time.monotonic() - last_sweep > 5:
                sweep()  # what beat does
                last_sweep = time.monotonic()
            time.sleep(0.5)

    try:
        stamp = int(time.time() * 1000)
        tenant, _ = tenant_create(name=f"bench-{stamp}")
        warmup_tenant, _ = tenant_create(name=f"bench-{stamp}-warmup")
        for n, port in enumerate(ports):
            webhook_create(tenant=tenant, url=f"http://127.0.0.1:{port}/endpoint-{n}", events=["*"])
            webhook_create(tenant=warmup_tenant, url=f"http://127.0.0.1:{port}/warmup-{n}", events=["*"])
        time.sleep(3)  # let the worker processes start
        # The first task in each worker process pays for imports, threads and connections (about half a
        # second here); a burst of uncounted events warms every process, so the figures describe a running system.
        for n in range(args.warmup):
            with transaction.atomic():
                event_emit(tenant=warmup_tenant, type="room_created", data={"roomId": f"warmup-{n}", "n": n})
        wait_for(warmup_tenant, args.warmup * len(ports), time.time() + 120)

        expected = args.events * len(ports)
        print(
            f"events: {args.events}  endpoints: {len(ports)}  deliveries expected: {expected}  "
            f"worker processes: {args.workers}  rate: {args.rate or 'unpaced'}  producers: {args.producers}  "
            f"warm-up events: {args.warmup}",
            flush=True,
        )
        print(f"load average at start: {loadavg()}", flush=True)
        cpu_started = cpu_seconds(resource.RUSAGE_SELF)
        started = time.time()
        interval = 1.0 / args.rate if args.rate else 0.0

        def produce(first: int) -> None:
            # Producer k emits events k, k + P, k + 2P, ... on the shared schedule (like P web processes).
            try:
                for n in range(first, args.events, args.producers):
                    if interval:
                        delay = started + n * interval - time.time()
                        if delay > 0:
                            time.sleep(delay)
                    with transaction.atomic():
                        event_emit(tenant=tenant, type="room_created", data={"roomId": f"room-{n}", "n": n})
            finally:
                connection.close()

        producers = [threading.Thread(target=produce, args=(k,)) for k in range(args.producers)]
        for producer in producers:
            producer.start()
        while any(producer.is_alive() for producer in producers):
            if time.monotonic() - last_sweep > 5:
                sweep()  # what beat does
                last_sweep = time.monotonic()
            time.sleep(0.2)
        emitted = time.time()
        producer_cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu_started
        print(f"emitted {args.events} events in {emitted - started:.1f} s", flush=True)
        wait_for(tenant, expected, started + args.timeout)
        print(f"load average at the end: {loadavg()}", flush=True)

        # Stop the workers (a warm shutdown finishes the attempts in flight) before counting, so that
        # what the receivers saw and what the database still owes describe the same moment.
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        worker_cpu = cpu_seconds(resource.RUSAGE_CHILDREN)  # the worker and its pool processes, warm-up included
        with urlopen(f"http://127.0.0.1:{ports[0]}/stats", timeout=60) as response:
            received = json.loads(response.read())
        created = {
            event_id: moment.timestamp()
            for event_id, moment in Event.objects.filter(tenant=tenant).values_list("id", "created_at")
        }
        firsts: dict[tuple[str, str], float] = {}
        duplicates = 0
        for webhook_id, path, at in received:
            if webhook_id not in created:
                continue
            key = (webhook_id, path)
            if key in firsts:
                duplicates += 1
            else:
                firsts[key] = at
        missing = expected - len(firsts)
        # Not received but still owed (a pending row the next worker or sweep sends) is late, not lost.
        still_pending = Delivery.objects.filter(tenant=tenant, status=Delivery.Status.PENDING).count()
        lost = missing - still_pending
        latencies = [at - created[event_id] for (event_id, _path), at in firsts.items()]
        finished = max(firsts.values()) if firsts else time.time()
        total_events = args.events + args.warmup
        print(f"delivered (unique):     {len(firsts)} of {expected}")
        print(f"still pending at the time limit: {still_pending}")
        print(f"lost:                   {lost}")
        print(f"duplicates:             {duplicates}")
        print(
            f"deliveries/s:           {len(firsts) / max(finished - started, 1e-9):.0f} "
            f"(first event to last delivery, {finished - started:.1f} s)"
        )
        print(f"latency p50:            {percentile(latencies, 0.50) * 1000:.0f} ms")
        print(f"latency p99:            {percentile(latencies, 0.99) * 1000:.0f} ms")
        print(f"latency max:            {max(latencies, default=float('nan')) * 1000:.0f} ms")
        print(
            f"CPU per event:          producer {producer_cpu / max(args.events, 1) * 1000:.1f} ms, "
            f"workers {worker_cpu / max(total_events, 1) * 1000:.1f} ms (warm-up included)"
        )
        return 0 if missing == 0 else 1
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        receivers.send_signal(signal.SIGTERM)
        for process in (worker, receivers):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
