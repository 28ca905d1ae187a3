"""Benchmark: real calls through the embedded LiveKit (`livekit_emulator`'s /rtc and aiortc forwarding).

Every client is the official `livekit` real-time SDK in this process; the emulator runs as its own process
(`python -m livekit_emulator`), so its CPU is measured apart from the clients'. Figures:

- join: from `Room.connect()` with a fresh token to connected (the SDK first asks for /rtc/v1, gets 404 and uses
  /rtc, as it would against this emulator in production), p50/p95;
- latency: one-way, publisher to subscriber on loopback: the publisher plays a click into its microphone source at a
  known time and the subscriber detects it in the audio it receives; p50/p95. This is mouth-to-ear through both SDKs
  (capture queue, Opus encoder, jitter buffer, decoder) and the server, so it bounds what the server adds from above;
- CPU per forwarded audio stream: the emulator's CPU-seconds per second in an all-talking room of N, divided by the
  N * (N - 1) streams it forwards;
- the largest all-talking room: N = 2, 3, ... participants each publish a tone and subscribe to everyone else for
  --seconds; packet loss from the subscribers' inbound-rtp statistics; the largest N with loss < 1 %.

    .venv/bin/python bench/media.py --joins 20 --clicks 10 --max-room 8 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from livekit import rtc  # noqa: E402

from livekit_emulator.testing import EmulatorProcess  # noqa: E402

RATE = 48_000
FRAME = 480  # 10 ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def token(emu: EmulatorProcess, identity: str, room: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emu.token(identity, room)


async def connect(emu: EmulatorProcess, identity: str, room: str) -> rtc.Room:
    client = rtc.Room()
    await client.connect(emu.ws_url, token(emu, identity, room))
    return client


async def bench_join(emu: EmulatorProcess, joins: int) -> list[float]:
    times = []
    for index in range(joins):
        started = time.perf_counter()
        client = await connect(emu, f"joiner-{index}", "bench-join")
        times.append(time.perf_counter() - started)
        await client.disconnect()
    return times


async def bench_latency(emu: EmulatorProcess, clicks: int) -> list[float]:
    listener = await connect(emu, "ear", "bench-latency")
    arrivals: list[float] = []
    ready = asyncio.Event()

    async def listen(track: rtc.Track) -> None:
        ready.set()
        quiet = True
        async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            peak = int(np.abs(np.frombuffer(bytes(event.frame.data), dtype=np.int16)).max(initial=0))
            if quiet and peak > 8000:
                arrivals.append(time.perf_counter())
            quiet = peak < 2000

    tasks: list[asyncio.Task[None]] = []
    listener.on("track_subscribed", lambda track, *_: tasks.append(asyncio.ensure_future(listen(track))))
    mouth = await connect(emu, "mouth", "bench-latency")
    # A short queue: the click enters the encoder within about 20 ms of capture_frame.
    source = rtc.AudioSource(RATE, 1, queue_size_ms=20)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    await mouth.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    await asyncio.wait_for(ready.wait(), 10)
    silence = np.zeros(FRAME, dtype=np.int16)
    click = (np.sin(2 * math.pi * 1000 * np.arange(FRAME) / RATE) * 20000).astype(np.int16)
    sent: list[float] = []
    for index in range(clicks * 50):  # one click each 500 ms, silence between
        samples = click if index % 50 == 25 else silence
        if index % 50 == 25:
            sent.append(time.perf_counter())
        await source.capture_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, FRAME))
        await asyncio.sleep(0)
    await asyncio.sleep(1.0)
    await mouth.disconnect()
    await listener.disconnect()
    latencies = []
    for at in sent:
        after = [a - at for a in arrivals if 0 < a - at < 0.5]
        if after:
            latencies.append(after[0])
    return latencies


async def inbound_packets(clients: list[rtc.Room]) -> tuple[int, int]:
    """(lost, received) RTP packets summed over every client's subscriptions, as its WebRTC stack counts them."""
    lost = received = 0
    for client in clients:
        stats = await client.get_rtc_stats()
        for item in stats.subscriber_stats:
            if item.WhichOneof("stats") == "inbound_rtp":
                lost += max(0, item.inbound_rtp.received.packets_lost)
                received += item.inbound_rtp.received.packets_received
    return lost, received


async def all_talking(emu: EmulatorProcess, size: int, seconds: float) -> tuple[float, float, int, float]:
    """(packet loss fraction, emulator CPU-seconds per second, forwarded streams, packets/s per stream received)."""
    room_name = f"bench-room-{size}"
    clients = [await connect(emu, f"talker-{i}", room_name) for i in range(size)]
    sources = []
    for index, client in enumerate(clients):
        source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        await client.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        tone = (np.sin(2 * math.pi * (300 + 50 * index) * np.arange(FRAME) / RATE) * 6000).astype(np.int16)
        sources.append((source, rtc.AudioFrame(tone.tobytes(), RATE, 1, FRAME)))

    # Subscribers do not play what they receive: the SDK still receives and counts every RTP packet (inbound-rtp),
    # and the clients, all in this one process on the same 2 cores, stay light enough not to be the bottleneck.
    async def talk(source: rtc.AudioSource, frame: rtc.AudioFrame) -> None:
        while True:
            await source.capture_frame(frame)

    talkers = [asyncio.ensure_future(talk(source, frame)) for source, frame in sources]
    await asyncio.sleep(2.0)  # everyone subscribed and flowing
    lost0, received0 = await inbound_packets(clients)
    cpu0, wall0 = cpu_seconds(emu.pid), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    cpu = (cpu_seconds(emu.pid) - cpu0) / wall
    lost1, received1 = await inbound_packets(clients)
    lost, received = lost1 - lost0, received1 - received0
    for task in talkers:
        task.cancel()
    for client in clients:
        await client.disconnect()
    await asyncio.sleep(1.0)
    streams = size * (size - 1)
    return lost / max(1, lost + received), cpu, streams, received / wall / streams


async def main(args: argparse.Namespace) -> None:
    with EmulatorProcess(env={"EMULATOR_LOG_LEVEL": "WARNING"}) as emu:
        joins = await bench_join(emu, args.joins)
        print(
            f"join (token -> connected), {len(joins)} joins: p50 {statistics.median(joins) * 1000:.0f} ms, "
            f"p95 {percentile(joins, 0.95) * 1000:.0f} ms"
        )
        latencies = await bench_latency(emu, args.clicks)
        if latencies:
            print(
                f"one-way latency (mouth to ear through both SDKs and the server), {len(latencies)} clicks: "
                f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms"
            )
        else:
            print("one-way latency: no click was detected")
        largest = 0
        for size in range(2, args.max_room + 1):
            try:
                loss, cpu, streams, rate = await asyncio.wait_for(
                    all_talking(emu, size, args.seconds), args.seconds + 60
                )
            except (TimeoutError, rtc.ConnectError) as exc:
                print(f"all-talking room of {size}: failed ({exc!r})")
                break
            print(
                f"all-talking room of {size}: loss {loss * 100:.2f} %, emulator CPU {cpu * 100:.0f} % of a core, "
                f"{cpu / streams * 1000:.1f} ms CPU per second per forwarded stream ({streams} streams, "
                f"{rate:.1f} packets/s received per stream of 50)"
            )
            if loss >= 0.01:
                break
            largest = size
        print(f"largest all-talking room with loss < 1 %: {largest} (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--max-room", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
