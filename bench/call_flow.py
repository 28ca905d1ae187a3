"""Call flow throughput and invite latency, over real HTTP and real WebSockets.

Starts the LiveKit emulator and ScaiWave under uvicorn (PostgreSQL + Redis), then measures:

1. calls per second: initiate (alice) -> join (bob) -> end (alice), each step a real HTTP request,
   run by CONCURRENCY clients at once, each in its own room;
2. `swp.call.invite` delivery latency to MEMBERS WebSocket clients connected to `/v1/events`: from the moment
   the initiate request is sent to the moment each member's socket yields the frame; p50 and p99.

    .venv/bin/python bench/call_flow.py [--calls 200] [--concurrency 4] [--members 200] [--rounds 10]

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/scaiwave_calls_bench, created and
migrated if missing), BENCH_REDIS_URL (default redis://127.0.0.1:6379/4).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402 - the path is set above

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scaiwave_calls_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
LIVEKIT_SECRET = "bench-livekit-secret-long-enough-for-hs256"


def setup_django(livekit_url: str) -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["LIVEKIT_URL"] = livekit_url
    os.environ["LIVEKIT_API_KEY"] = "devkey"
    os.environ["LIVEKIT_API_SECRET"] = LIVEKIT_SECRET
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the figures


def make_fixtures(members: int, rooms: int):
    """A fresh tenant; one big room with `members` members plus alice; `rooms` small rooms for alice+bob."""
    from rooms.models import Room, RoomMember
    from scaiwave.testing import make_tenant

    creds = make_tenant(f"bench-{secrets.token_hex(4)}")

    def room(name: str, subs: list[str]) -> None:
        row = Room.objects.create(
            tenant=creds.tenant, name=name, livekit_name=Room.livekit_name_for(creds.tenant, name)
        )
        RoomMember.objects.bulk_create(
            [RoomMember(room=row, user=creds.user_row(sub), power_level=100 if sub == "alice" else 0) for sub in subs]
        )

    room("all-hands", ["alice", *[f"m{n:03d}" for n in range(members)]])
    for n in range(rooms):
        room(f"pair-{n}", [f"alice{n}", f"bob{n}"])
    return creds


def start_server(port: int, livekit_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "THROTTLE_USER_RATE": "1000000/min",
        "LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "uvicorn", "scaiwave.asgi:application", "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning", "--lifespan", "off"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def wait_ready(base: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(base + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("ScaiWave did not start")


async def call_throughput(base: str, creds, calls: int, concurrency: int) -> float:
    import httpx

    async def one_room(n: int, count: int, client: httpx.AsyncClient) -> None:
        alice = {"Authorization": f"Bearer {creds.user_token(f'alice{n}')}"}
        bob = {"Authorization": f"Bearer {creds.user_token(f'bob{n}')}"}
        for _ in range(count):
            started = await client.post(
                "/v1/calls/initiate", json={"room_id": f"pair-{n}", "type": "audio"}, headers=alice
            )
            assert started.status_code == 201, started.text
            call_id = started.json()["data"]["call_id"]
            joined = await client.post(f"/v1/calls/{call_id}/join", headers=bob)
            assert joined.status_code == 200, joined.text
            ended = await client.post(f"/v1/calls/{call_id}/end", headers=alice)
            assert ended.status_code == 200, ended.text

    per_room = max(1, calls // concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await one_room(0, 2, client)  # warm-up
        began = time.perf_counter()
        await asyncio.gather(*(one_room(n, per_room, client) for n in range(concurrency)))
        elapsed = time.perf_counter() - began
    return per_room * concurrency / elapsed


async def invite_latency(base: str, creds, members: int, rounds: int) -> tuple[list[float], list[float]]:
    """Per-delivery invite latencies, and the initiate requests' own round trips (seconds)."""
    import httpx
    import websockets

    ws_base = base.replace("http://", "ws://")
    sockets = []
    for n in range(members):
        token = creds.user_token(f"m{n:03d}")
        ws = await websockets.connect(f"{ws_base}/v1/events?access_token={token}", max_queue=None)
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connected"
        sockets.append(ws)
    latencies: list[float] = []
    round_trips: list[float] = []
    alice = {"Authorization": f"Bearer {creds.user_token('alice')}"}

    lost: list[int] = []

    async def await_invite(ws, sent_at: list[float]) -> float | None:
        try:
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "swp.call.invite":
                    return time.perf_counter() - sent_at[0]
        except websockets.ConnectionClosed:
            return None  # the server dropped this member (counted and reported, not hidden)

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(rounds):
            sent_at = [0.0]
            waiters = [asyncio.create_task(await_invite(ws, sent_at)) for ws in sockets]
            await asyncio.sleep(0.05)
            sent_at[0] = time.perf_counter()
            started = await client.post(
                "/v1/calls/initiate", json={"room_id": "all-hands", "type": "audio"}, headers=alice
            )
            assert started.status_code == 201, started.text
            round_trips.append(time.perf_counter() - sent_at[0])
            results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
            latencies.extend(value for value in results if value is not None)
            lost.append(sum(1 for value in results if value is None))
            sockets = [ws for ws, value in zip(sockets, results, strict=True) if value is not None]
            call_id = started.json()["data"]["call_id"]
            ended = await client.post(f"/v1/calls/{call_id}/end", headers=alice)
            assert ended.status_code == 200, ended.text
            await asyncio.sleep(0.2)  # let the ended/ringing_cancelled frames drain
            for ws in sockets:
                while True:
                    try:
                        await asyncio.wait_for(ws.recv(), timeout=0.001)
                    except (TimeoutError, websockets.ConnectionClosed):
                        break
    for ws in sockets:
        await ws.close()
    if any(lost):
        print(f"WARNING: {sum(lost)} member sockets were closed by the server during the run (per round: {lost})")
    return latencies, round_trips


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    from livekit_emulator.testing import EmulatorProcess, free_port

    ensure_database(DATABASE_URL)
    with EmulatorProcess(api_secret=LIVEKIT_SECRET) as emulator:
        setup_django(emulator.url)
        creds = make_fixtures(args.members, args.concurrency)
        port = free_port()
        server = start_server(port, emulator.url)
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(base))
            rate = asyncio.run(call_throughput(base, creds, args.calls, args.concurrency))
            latencies, round_trips = asyncio.run(invite_latency(base, creds, args.members, args.rounds))
        finally:
            server.terminate()
            server.wait(timeout=10)
    ms = [value * 1000 for value in latencies]
    print(f"calls initiated+joined+ended per second ({args.concurrency} concurrent clients): {rate:.1f}")
    print(
        f"swp.call.invite latency to {args.members} WebSocket members over {args.rounds} calls "
        f"({len(ms)} deliveries): p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )
    print(
        f"initiate round trip while fanning out to {args.members}: p50 {statistics.median(round_trips) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
