"""Real clients for the /rtc tests: the official `livekit` real-time SDK, and speech to feed it."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from livekit import rtc

from livekit_emulator.testing import EmulatorProcess

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 480  # 10 ms, the SDK's native frame


def rtc_url(emu: EmulatorProcess) -> str:
    return emu.url.replace("http://", "ws://", 1)


async def connect(emu: EmulatorProcess, token: str, **options: object) -> rtc.Room:
    room = rtc.Room()
    await room.connect(rtc_url(emu), token, rtc.RoomOptions(**options))  # type: ignore[arg-type]
    return room


def record_first_audio(room: rtc.Room) -> bytearray:
    """Collect (s16le, 48 kHz, mono) the first remote audio track ``room`` subscribes to, as it arrives."""
    received = bytearray()
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        async for event in stream:
            received.extend(bytes(event.frame.data))

    @room.on("track_subscribed")
    def on_subscribed(track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and not received:
            readers.append(asyncio.ensure_future(read(track)))

    return received


async def publish_microphone(
    room: rtc.Room, *, name: str = "microphone"
) -> tuple[rtc.LocalTrackPublication, rtc.AudioSource]:
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    return await room.local_participant.publish_track(track, options), source


async def play(source: rtc.AudioSource, pcm: bytes) -> None:
    """Play ``pcm`` (s16le, 48 kHz, mono) into ``source`` in real time."""
    step = FRAME_SAMPLES * 2
    for at in range(0, len(pcm) - step + 1, step):
        # capture_frame returns once the SDK's 1 s queue has room: playback runs at the media rate.
        await source.capture_frame(rtc.AudioFrame(pcm[at : at + step], SAMPLE_RATE, 1, FRAME_SAMPLES))
    await source.wait_for_playout()


async def publish_pcm(room: rtc.Room, pcm: bytes) -> rtc.LocalTrackPublication:
    """Publish a microphone track and play ``pcm`` into it."""
    publication, source = await publish_microphone(room)
    await play(source, pcm)
    return publication


def espeak(path: Path, text: str) -> Path:
    """Synthetic speech as the transcription tests make it (espeak-ng, half a second of silence around it)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(raw), "-af", "adelay=500,apad=pad_dur=0.5", str(path)],
        check=True,
        timeout=60,
    )
    raw.unlink()
    return path


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())
