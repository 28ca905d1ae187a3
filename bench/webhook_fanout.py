"""Outbound webhook fan-out benchmark: events -> Delivery rows -> signed POSTs to local receivers.

    .venv/bin/python bench/webhook_fanout.py [--events 10000] [--endpoints 10] [--workers 4] [--rate 0]

Real pieces only: PostgreSQL (DATABASE_URL, default a `scaiwave_webhooks_bench` database it creates and
migrates), Redis as the Celery broker (REDIS_URL, default redis://127.0.0.1:6379/3), one Celery worker
with --workers prefork processes, and --endpoints HTTP receivers on 127.0.0.1 (a separate process).
Events are emitted through the outbox (`event_emit`), exactly as the product does. This process also
plays beat's webhook sweep every few seconds. `--rate N` paces emission at N events/s (0 = as fast as
possible). Prints deliveries/s, event-to-delivery latency p50/p99 (event row created -> receiver got it),
the count lost (must be 0) and duplicates. Gives up after --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/scaiwave_webhooks_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


# --- the receivers (run in their own process: `--serve-receivers N`) --------------------------------


def serve_receivers(count: int) -> None:
    received: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 65536  # one write per response

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            with lock:
                received.append((self.headers.get("webhook-id", ""), self.path, now))
            del body
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                payload = json.dumps(received).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    servers = []
    for _ in range(count):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    print(json.dumps([s.server_address[1] for s in servers]), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


# --- the benchmark --------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = unpaced")
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
    ensure_database(env["DATABASE_URL"])
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import transaction

    from scaiwave.celery import app
    from scaiwave.events.services import event_emit
    from scaiwave.models import Event
    from scaiwave.services import tenant_create
    from webhooks.models import Delivery
    from webhooks.services import webhook_create
    from webhooks.tasks import sweep

    app.control.purge()  # stale tasks from earlier runs
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
    try:
        tenant, _ = tenant_create(name=f"bench-{int(time.time() * 1000)}")
        for n, port in enumerate(ports):
            webhook_create(tenant=tenant, url=f"http://127.0.0.1:{port}/endpoint-{n}", events=["*"])
        time.sleep(3)  # let the worker processes start
        expected = args.events * len(ports)
        print(
            f"events: {args.events}  endpoints: {len(ports)}  deliveries expected: {expected}  "
            f"worker processes: {args.workers}  rate: {args.rate or 'unpaced'}",
            flush=True,
        )

        started = time.time()
        interval = 1.0 / args.rate if args.rate else 0.0
        last_sweep = time.monotonic()
        for n in range(args.events):
            if interval:
                delay = started + n * interval - time.time()
                if delay > 0:
                    time.sleep(delay)
            with transaction.atomic():
                event_emit(tenant=tenant, type="room_created", data={"roomId": f"room-{n}", "n": n})
            if time.monotonic() - last_sweep > 5:
                sweep()
                last_sweep = time.monotonic()
        emitted = time.time()
        print(f"emitted {args.events} events in {emitted - started:.1f} s", flush=True)

        deadline = started + args.timeout
        delivered = 0
        while time.time() < deadline:
            delivered = Delivery.objects.filter(tenant=tenant, status=Delivery.Status.DELIVERED).count()
            if delivered >= expected:
                break
            if time.monotonic() - last_sweep > 5:
                sweep()  # what beat does
                last_sweep = time.monotonic()
            time.sleep(1)

        # Stop the workers (a warm shutdown finishes the attempts in flight) before counting, so that
        # what the receivers saw and what the database still owes describe the same moment.
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
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
