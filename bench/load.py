"""Load bench: a mixed workload against the production configuration, bounded in time, loopback only.

It starts its own stack (scaiwave/tests/fault_stack.py: a private PostgreSQL cluster and Redis on free
ports, uvicorn with --workers N and SCAIWAVE_MODE=production, one Celery worker and beat) and the LiveKit
emulator, sets up rooms with members and a few uploaded calls, then runs C concurrent virtual users for
--seconds. Each virtual user owns one room and loops over a weighted mix:

- token minting: `POST /v1/token` (server key);
- a call: `POST /v1/calls/initiate` -> `POST /v1/calls/{id}/join` -> the callee's `.../leave` or the
  initiator's `.../end`, alternately (member JWTs; nobody connects media, so a leave ends the ringing call);
- status polling: `GET /api/calls/status?ids=...` (the uploaded calls' bulk status);
- webhook intake: a signed LiveKit `participant_joined` then `participant_left` to `POST /v1/calls/webhook`.

It prints requests/s, p50/p95/p99 per endpoint, the error count (5xx, transport errors, and answers that are
not the expected status), the peak RSS of the uvicorn and Celery processes, and the load average. Then it
stops everything it started.

    .venv/bin/python bench/load.py --seconds 60 --users 16 --web-workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402

from livekit_emulator.testing import EmulatorProcess  # noqa: E402
from scaiwave.tests.fault_stack import Stack, rss_kib  # noqa: E402

MIX = {"token": 30, "call": 25, "status": 30, "webhook": 15}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def user_token(creds: dict[str, Any], sub: str) -> str:
    now = int(time.time())
    payload = {"iss": creds["api_key"], "sub": sub, "iat": now, "exp": now + 7200}
    return jwt.encode(payload, creds["api_secret"], algorithm="HS256")


def tone_wav(seconds: float = 1.0) -> bytes:
    import io
    import math
    import struct
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(n / 3))) for n in range(int(seconds * 8000))))
    return buffer.getvalue()


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, list[str]] = defaultdict(list)

    async def request(self, client: httpx.AsyncClient, label: str, method: str, url: str, *, expect: int,
                      **kwargs: Any) -> httpx.Response | None:  # fmt: skip
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.errors[label] += 1
            self._sample(label, repr(exc))
            return None
        self.latencies[label].append(time.perf_counter() - started)
        if response.status_code != expect:
            self.errors[label] += 1
            self._sample(label, f"{response.status_code} {response.text[:200]}")
            return None
        return response

    def _sample(self, label: str, text: str) -> None:
        if len(self.samples[label]) < 3:
            self.samples[label].append(text)


class VirtualUser:
    def __init__(self, index: int, ctx: dict[str, Any], recorder: Recorder) -> None:
        self.index = index
        self.ctx = ctx
        self.rec = recorder
        self.room = f"load-{index}"
        self.livekit_room = ctx["livekit_names"][self.room]
        self.caller = f"caller-{index}"
        self.callee = f"callee-{index}"
        self.seq = 0

    async def run(self, base_url: str, deadline: float) -> None:
        creds = self.ctx["creds"]
        # Below uvicorn's 5 s keep-alive, so a pooled connection is never reused just as the server closes it.
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=4.0)
        server = httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": creds["api_secret"]}, timeout=30,
                                   limits=limits)  # fmt: skip
        caller = httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits,
                                   headers={"Authorization": f"Bearer {user_token(creds, self.caller)}"})  # fmt: skip
        callee = httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits,
                                   headers={"Authorization": f"Bearer {user_token(creds, self.callee)}"})  # fmt: skip
        poller = httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits,
                                   headers={"Authorization": f"Bearer {user_token(creds, 'uploader')}"})  # fmt: skip
        anonymous = httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits)
        kinds, weights = zip(*MIX.items(), strict=True)
        rng = random.Random(self.index)
        try:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                if kind == "token":
                    await self.rec.request(server, "POST /v1/token", "POST", "/v1/token", expect=200,
                                           json={"roomId": self.room, "userId": f"viewer-{self.index}-{self.seq % 50}",
                                                 "name": "Viewer", "role": "viewer"})  # fmt: skip
                elif kind == "call":
                    await self.call(caller, callee)
                elif kind == "status":
                    ids = ",".join(self.ctx["uploaded_ids"])
                    await self.rec.request(poller, "GET /api/calls/status", "GET", f"/api/calls/status?ids={ids}",
                                           expect=200)  # fmt: skip
                else:
                    await self.webhooks(anonymous)
                self.seq += 1
        finally:
            for client in (server, caller, callee, poller, anonymous):
                await client.aclose()

    async def call(self, caller: httpx.AsyncClient, callee: httpx.AsyncClient) -> None:
        started = await self.rec.request(caller, "POST /v1/calls/initiate", "POST", "/v1/calls/initiate",
                                         expect=201, json={"room_id": self.room, "type": "audio"})  # fmt: skip
        if started is None:
            return
        call_id = started.json()["data"]["call_id"]
        await self.rec.request(callee, "POST /v1/calls/{id}/join", "POST", f"/v1/calls/{call_id}/join", expect=200)
        # The callee is not connected in LiveKit (no media here), so its leave ends the ringing call
        # (rejected): alternate a callee's leave and the initiator's end so that both are measured.
        if self.seq % 2:
            await self.rec.request(callee, "POST /v1/calls/{id}/leave", "POST", f"/v1/calls/{call_id}/leave",
                                   expect=200)  # fmt: skip
        else:
            await self.rec.request(caller, "POST /v1/calls/{id}/end", "POST", f"/v1/calls/{call_id}/end", expect=200)

    async def webhooks(self, client: httpx.AsyncClient) -> None:
        from livekit.protocol import models as lk_models
        from livekit.protocol import webhook as lk_webhook

        from rooms.testing import sign_webhook, webhook_body

        now = int(time.time())
        room = lk_models.Room(sid=f"RM_load{self.index:04d}", name=self.livekit_room)
        participant = lk_models.ParticipantInfo(
            sid=f"PA_l{self.index:04d}{self.seq:06d}", identity=f"guest-{self.index}-{self.seq}", name="Guest",
            state=lk_models.ParticipantInfo.State.ACTIVE, joined_at=now, joined_at_ms=now * 1000 + self.seq,
        )  # fmt: skip
        for kind, offset in (("participant_joined", 0), ("participant_left", 1)):
            event_id = f"EV_{self.ctx['run']}{self.index:03d}{self.seq:06d}{kind[12]}"
            event = lk_webhook.WebhookEvent(event=kind, id=event_id, created_at=now + offset, room=room,
                                            participant=participant)  # fmt: skip
            body = webhook_body(event)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                auth = sign_webhook(body, api_key=self.ctx["lk_key"], api_secret=self.ctx["lk_secret"])
            await self.rec.request(client, "POST /v1/calls/webhook", "POST", "/v1/calls/webhook", expect=200,
                                   content=body, headers={"Authorization": auth,
                                                          "Content-Type": "application/webhook+json"})  # fmt: skip


class MemorySampler(threading.Thread):
    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stop_event = threading.Event()
        self.peak: dict[str, int] = {"web": 0, "celery": 0}

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            if self.stack.web is not None:
                self.peak["web"] = max(self.peak["web"], rss_kib(self.stack.web.pids()))
            celery = sum(rss_kib(p.pids()) for p in (self.stack.worker, self.stack.beat) if p is not None)
            self.peak["celery"] = max(self.peak["celery"], celery)


def setup(stack: Stack, users: int, emulator: EmulatorProcess) -> dict[str, Any]:
    creds = stack.creds
    with stack.client(timeout=60) as server:
        for index in range(users):
            room = f"load-{index}"
            assert server.post("/v1/rooms", json={"name": room}).status_code == 201
            for sub, power in ((f"caller-{index}", 50), (f"callee-{index}", 0)):
                answer = server.put(f"/v1/rooms/{room}/members/{sub}", json={"powerLevel": power, "name": sub})
                assert answer.status_code in (200, 201), answer.text
    uploader = httpx.Client(base_url=stack.base_url, timeout=60,
                            headers={"Authorization": f"Bearer {user_token(creds, 'uploader')}"})  # fmt: skip
    uploaded = []
    with uploader:
        for n in range(5):
            answer = uploader.post("/api/calls/analyze", files={"file": (f"call-{n}.wav", tone_wav(), "audio/wav")})
            assert answer.status_code == 202, answer.text
            uploaded.append(answer.json()["callId"])
    code = (
        "import json; from rooms.models import Room; "
        "print(json.dumps({r.name: r.livekit_name for r in Room.objects.filter(name__startswith='load-')}))"
    )
    names = json.loads(stack.shell(code).strip().splitlines()[-1])
    return {
        "creds": creds,
        "livekit_names": names,
        "uploaded_ids": uploaded,
        "lk_key": emulator.api_key,
        "lk_secret": emulator.api_secret,
        "run": f"{int(time.time()) % 100000:05d}",
    }


async def drive(stack: Stack, ctx: dict[str, Any], users: int, seconds: float, recorder: Recorder) -> float:
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(VirtualUser(i, ctx, recorder).run(stack.base_url, deadline) for i in range(users)))
    return time.monotonic() - started


def report(recorder: Recorder, elapsed: float, peaks: dict[str, int], args: argparse.Namespace,
           load_before: tuple[float, float, float], load_after: tuple[float, float, float]) -> None:  # fmt: skip
    total = sum(len(v) for v in recorder.latencies.values())
    errors = sum(recorder.errors.values())
    print(f"\nScaiWave load bench: {args.users} virtual users, {elapsed:.1f} s, uvicorn --workers {args.web_workers}, "
          "1 Celery worker (concurrency 1) + beat, PostgreSQL, Redis, LiveKit emulator; "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    print(f"\n{'endpoint':<30} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label in sorted(set(recorder.latencies) | set(recorder.errors)):
        values = recorder.latencies.get(label, [])
        print(f"{label:<30} {len(values):>7} {len(values) / elapsed:>8.1f} {percentile(values, 0.5) * 1000:>8.1f} "
              f"{percentile(values, 0.95) * 1000:>8.1f} {percentile(values, 0.99) * 1000:>8.1f} "
              f"{recorder.errors.get(label, 0):>7}")  # fmt: skip
    print(f"{'all':<30} {total:>7} {total / elapsed:>8.1f} {'':>8} {'':>8} {'':>8} {errors:>7}")
    print(f"\npeak RSS: uvicorn (master + workers) {peaks['web'] / 1024:.0f} MiB, "
          f"celery (worker + child + beat) {peaks['celery'] / 1024:.0f} MiB")  # fmt: skip
    for label, samples in recorder.samples.items():
        for sample in samples:
            print(f"error sample {label}: {sample}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the workload runs (default 60)")
    parser.add_argument("--users", type=int, default=16, help="concurrent virtual users (default 16)")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn --workers (default 2)")
    args = parser.parse_args()
    with EmulatorProcess(env={"EMULATOR_DEPARTURE_TIMEOUT": "1"}) as emulator:
        stack = Stack(livekit_url=emulator.url, livekit_key=emulator.api_key, livekit_secret=emulator.api_secret,
                      workers=args.web_workers,
                      extra_env={"THROTTLE_USER_RATE": "1000000/min", "THROTTLE_SERVER_RATE": "1000000/min",
                                 "DATABASE_POOL_SIZE": "10", "STT_MODEL": "tiny.en"})  # fmt: skip
        try:
            stack.start()
            ctx = setup(stack, args.users, emulator)
            recorder = Recorder()
            sampler = MemorySampler(stack)
            sampler.start()
            load_before = os.getloadavg()
            elapsed = asyncio.run(drive(stack, ctx, args.users, args.seconds, recorder))
            load_after = os.getloadavg()
            sampler.stop_event.set()
            sampler.join(5)
            report(recorder, elapsed, sampler.peak, args, load_before, load_after)
        finally:
            stack.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
