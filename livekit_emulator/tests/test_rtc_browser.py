"""The official JavaScript client (livekit-client 2.23.0 from npm) in Debian's headless Chromium, via Playwright.

Chromium's fake microphone plays a WAV file; the page publishes it, and measures with WebAudio the level of what it
receives from a Python SDK client. Playwright's own browser download is never used.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from livekit_emulator.testing import EmulatorProcess, free_port

from .media_clients import SAMPLE_RATE, connect, record_first_audio, rtc_url
from .test_rtc_signalling import tone, until

async_api = pytest.importorskip("playwright.async_api", reason="pip install playwright (no browser download)")

NODE_DIR = Path(__file__).with_name("node")
CLIENT_JS = NODE_DIR / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

PAGE = """<!doctype html><meta charset="utf-8"><title>rtc</title><script src="livekit-client.umd.js"></script>
<script>
window.levels = [];
window.join = async (url, token) => {
  const room = new LivekitClient.Room();
  window.room = room;
  room.on(LivekitClient.RoomEvent.TrackSubscribed, (track) => {
    if (track.kind !== "audio") return;
    const stream = new MediaStream([track.mediaStreamTrack]);
    // Chromium only feeds a remote WebRTC stream to WebAudio while a media element plays it too.
    const element = new Audio(); element.muted = true; element.srcObject = stream; element.play();
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    context.createMediaStreamSource(stream).connect(analyser);
    const buffer = new Float32Array(analyser.fftSize);
    window.level = () => {
      analyser.getFloatTimeDomainData(buffer);
      return Math.sqrt(buffer.reduce((sum, x) => sum + x * x, 0) / buffer.length);
    };
  });
  await room.connect(url, token);
  await room.localParticipant.setMicrophoneEnabled(true);
  return room.localParticipant.identity;
};
</script>"""


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not CLIENT_JS.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    root = tmp_path_factory.mktemp("page")
    (root / "index.html").write_text(PAGE)
    shutil.copy(CLIENT_JS, root / CLIENT_JS.name)
    microphone = root / "microphone.wav"
    # Chromium's fake capture loops this file: a steady 660 Hz tone.
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=660:duration=5", str(microphone)],
        check=True,
        timeout=60,
    )
    yield root


@pytest.fixture
def page_url(page_dir: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(QuietHandler, directory=str(page_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(float)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def test_a_browser_publishes_its_microphone_hears_a_python_client_and_mutes(
    emu: EmulatorProcess, page_url: str, page_dir: Path
) -> None:
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={page_dir / 'microphone.wav'}",
    ]

    async def call() -> dict[str, Any]:
        python = await connect(emu, emu.token("python", "r1"))
        heard = record_first_audio(python)
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await python.local_participant.publish_track(track, options)
        stop = asyncio.Event()

        async def speak() -> None:
            pcm = tone(0.1)
            while not stop.is_set():
                await source.capture_frame(rtc.AudioFrame(pcm, SAMPLE_RATE, 1, len(pcm) // 2))

        speaker = asyncio.ensure_future(speak())
        result: dict[str, Any] = {}
        async with async_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = await browser.new_page()
            await page.goto(page_url)
            result["identity"] = await page.evaluate(
                "([u, t]) => window.join(u, t)", [rtc_url(emu), emu.token("web", "r1")]
            )
            await page.wait_for_function("() => typeof window.level === 'function'", timeout=15_000)
            await asyncio.sleep(1.5)
            result["browser_level"] = max([await page.evaluate("() => window.level()") for _ in range(10)])
            await until(lambda: len(heard) > SAMPLE_RATE)  # a second of the browser's microphone
            result["python_level_live"] = rms(bytes(heard[-SAMPLE_RATE:]))
            await page.evaluate("() => window.room.localParticipant.setMicrophoneEnabled(false)")
            await until(lambda: all(p.muted for p in python.remote_participants["web"].track_publications.values()))
            participants = emu.control.state()["rooms"][0]["participants"]
            result["muted_in_state"] = [t["muted"] for p in participants if p["identity"] == "web" for t in p["tracks"]]
            await asyncio.sleep(1.0)
            mark = len(heard)
            await asyncio.sleep(1.0)
            result["python_level_muted"] = rms(bytes(heard[mark:]))
            await browser.close()
        stop.set()
        await speaker
        await python.disconnect()
        return result

    result = asyncio.run(asyncio.wait_for(call(), 90))

    assert result["identity"] == "web"
    assert result["browser_level"] > 0.05, result  # the Python client's tone at about a quarter of full scale
    # The browser's fake microphone, heard by Python: Chromium's capture processing (noise suppression, gain control)
    # takes a steady tone down to an RMS of about 650; silence is 0.
    assert result["python_level_live"] > 300, result
    assert result["muted_in_state"] == [True], result
    assert result["python_level_muted"] < 100, result


def test_a_browser_camera_reaches_a_python_client_as_vp8(emu: EmulatorProcess, page_url: str, page_dir: Path) -> None:
    args = ["--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

    async def call() -> tuple[int, int, str]:
        python = await connect(emu, emu.token("python", "r2"))
        frames: list[tuple[int, int]] = []
        readers: list[asyncio.Task[None]] = []

        async def read(track: rtc.Track) -> None:
            async for event in rtc.VideoStream(track):
                frames.append((event.frame.width, event.frame.height))

        @python.on("track_subscribed")
        def on_subscribed(track: rtc.Track, *_: Any) -> None:
            if track.kind == rtc.TrackKind.KIND_VIDEO:
                readers.append(asyncio.ensure_future(read(track)))

        async with async_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = await browser.new_page()
            await page.goto(page_url)
            await page.evaluate(
                "async ([url, token]) => { const room = new LivekitClient.Room(); window.room = room;"
                " await room.connect(url, token); await room.localParticipant.setCameraEnabled(true); }",
                [rtc_url(emu), emu.token("camera", "r2")],
            )
            await until(lambda: len(frames) >= 10, timeout=20)
            mime = emu.control.state()["rooms"][0]["participants"]
            await browser.close()
        await python.disconnect()
        width, height = frames[-1]
        tracks = [t for p in mime if p["identity"] == "camera" for t in p["tracks"]]
        return width, height, tracks[0]["mime_type"] if tracks else ""

    width, height, mime_type = asyncio.run(asyncio.wait_for(call(), 90))
    assert width > 0 and height > 0
    assert mime_type == "video/VP8"
