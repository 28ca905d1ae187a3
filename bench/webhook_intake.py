"""Benchmark: LiveKit participant webhooks accepted and applied per second by `POST /v1/calls/webhook`.

It builds N participant events (joins, then the matching leaves) for open rooms of a throw-away tenant, signed
as LiveKit signs them. The signing happens before the clock starts. The events are sent over real HTTP to a
uvicorn server on PostgreSQL. Each room's events go in order on one connection, as LiveKit's per-room queue sends
them, and many rooms run at once; 5xx and 429 answers are retried as LiveKit retries them. With --duplicates K,
every event is re-sent K more times. The script then checks the database:

- every event is stored once and applied (`outcome` applied), so none was lost;
- exactly one `participant_joined` and one `participant_left` outbox event exist per connection, so none was
  applied twice;
- the mirror ends with nobody connected.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scaiwave_bench .venv/bin/python bench/webhook_intake.py \
        --events 10000 --rooms 100 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.token_mint import (  # noqa: E402 - the path is set above
    Server,
    _read_response,
    django_setup,
    make_tenant,
    percentile,
)


def build_requests(livekit_names: list[str], events: int, duplicates: int) -> list[list[bytes]]:
    """Per room: the HTTP requests of its joins then leaves, each repeated 1 + duplicates times."""
    from livekit.protocol import models as lk_models
    from livekit.protocol import webhook as lk_webhook

    from rooms.testing import sign_webhook, webhook_body

    connections = events // 2
    per_room: list[list[bytes]] = [[] for _ in livekit_names]
    now = int(time.time())
    run = f"{now % 100000:05d}"  # event ids are unique in the database across runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index in range(connections):
            room_index = index % len(livekit_names)
            room = lk_models.Room(sid=f"RM_bench{room_index:06d}", name=livekit_names[room_index])
            participant = lk_models.ParticipantInfo(
                sid=f"PA_b{index:010d}",
                identity=f"user-{index}",
                name=f"User {index}",
                state=lk_models.ParticipantInfo.State.ACTIVE,
                joined_at=now,
                joined_at_ms=now * 1000 + index,
            )
            for kind, offset in (("participant_joined", 0), ("participant_left", 1)):
                event = lk_webhook.WebhookEvent(
                    event=kind,
                    id=f"EV_{run}{kind[12:14]}{index:08d}",
                    created_at=now + offset,
                    room=room,
                    participant=participant,
                )
                body = webhook_body(event)
                request = (
                    b"POST /v1/calls/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/webhook+json\r\n"
                    + f"Authorization: {sign_webhook(body, api_key=KEY, api_secret=SECRET)}\r\n".encode()
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                per_room[room_index].extend([request] * (1 + duplicates))
    # Joins before leaves within each room: LiveKit's order for one room.
    for i, requests in enumerate(per_room):
        joins = [r for r in requests if b"participant_joined" in r]
        leaves = [r for r in requests if b"participant_left" in r]
        per_room[i] = joins + leaves
    return per_room


KEY = "benchkey"
SECRET = "bench-livekit-secret-that-is-long-enough-for-hs256"


def _send_rooms(port: int, rooms: list[list[bytes]], out: Any) -> None:
    import uvloop

    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one_room(requests: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in requests:
                # Like LiveKit: 5xx (except 501) and 429 are retried, up to 4 times with a back-off.
                for attempt in range(5):
                    started = time.perf_counter()
                    writer.write(request)
                    status, _ = await _read_response(reader)
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1
                    if not (status == 429 or (status >= 500 and status != 501)):
                        break
                    await asyncio.sleep(0.2 * 2**attempt)
        finally:
            writer.close()

    async def main() -> None:
        await asyncio.gather(*(one_room(r) for r in rooms))

    uvloop.run(main())
    out.put((latencies, statuses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="distinct participant events (joins + leaves)")
    parser.add_argument("--rooms", type=int, default=100, help="rooms the participants are spread over")
    parser.add_argument("--duplicates", type=int, default=0, help="extra copies of every event")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--fresh-connections", action="store_true", help="serve with CONN_MAX_AGE=0")
    parser.add_argument("--timeout", type=float, default=300.0, help="upper bound on the sending phase (s)")
    args = parser.parse_args()

    import os

    os.environ["LIVEKIT_API_KEY"] = KEY
    os.environ["LIVEKIT_API_SECRET"] = SECRET
    django_setup()
    from rooms.models import Room, RoomParticipant
    from scaiwave.models import Event
    from webhooks.models import LiveKitEvent

    tenant, _secret = make_tenant("bench-webhooks")
    rooms = [
        Room.objects.create(
            tenant=tenant,
            name=f"bench-{i}",
            livekit_name=Room.livekit_name_for(tenant, f"bench-{i}"),
            livekit_sid=f"RM_bench{i:06d}",
        )
        for i in range(args.rooms)
    ]
    per_room = build_requests([room.livekit_name for room in rooms], args.events, args.duplicates)
    total_requests = sum(len(r) for r in per_room)

    server_env = {"LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}
    with Server(args.workers, env=server_env, fresh_connections=args.fresh_connections) as server:
        queue: mp.Queue[Any] = mp.Queue()
        shares = [per_room[i :: args.client_processes] for i in range(args.client_processes)]
        senders = [mp.Process(target=_send_rooms, args=(server.port, share, queue)) for share in shares]
        started = time.perf_counter()
        for sender in senders:
            sender.start()
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        for _ in senders:
            lat, stat = queue.get(timeout=args.timeout)
            latencies.extend(lat)
            for status, count in stat.items():
                statuses[status] = statuses.get(status, 0) + count
        elapsed = time.perf_counter() - started
        for sender in senders:
            sender.join()

    room_ids = [room.pk for room in rooms]
    names = [room.livekit_name for room in rooms]
    stored = LiveKitEvent.objects.filter(room_name__in=names)
    applied = stored.filter(outcome="applied").count()
    joined_events = Event.objects.filter(tenant=tenant, type="participant_joined").count()
    left_events = Event.objects.filter(tenant=tenant, type="participant_left").count()
    connections = args.events // 2
    still_connected = RoomParticipant.objects.filter(room_id__in=room_ids, state="joined").count()
    lost = args.events - stored.count()
    applied_twice = (joined_events - connections) + (left_events - connections)

    print(
        f"webhook intake: {total_requests} deliveries ({args.events} distinct events, {args.duplicates} duplicate(s) "
        f"each) in {elapsed:.2f} s = {total_requests / elapsed:,.0f} deliveries/s, "
        f"{args.events / elapsed:,.0f} distinct events/s applied, {args.workers} worker(s), {args.rooms} rooms"
    )
    print(f"HTTP statuses: {statuses}")
    print(
        f"latency ms: p50 {percentile(latencies, 0.5):.1f}, p99 {percentile(latencies, 0.99):.1f}; "
        f"stored {stored.count()}, applied {applied}, lost {lost}, applied twice {applied_twice}, "
        f"participant_joined {joined_events}, participant_left {left_events}, still connected {still_connected}"
    )
    if lost or applied_twice or still_connected or applied != args.events:
        sys.exit(1)


if __name__ == "__main__":
    main()
