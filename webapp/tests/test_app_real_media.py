"""A call in the app with real media: two Chromium processes, each with its own fake microphone playing a WAV of
espeak speech, connect livekit-client from the call page to the emulator with the tickets ScaiWave gave them.

Alice calls, Bob answers on his page (no control API: his page's own connection makes the call active through
LiveKit's webhooks); each page hears the other (WebAudio level of the remote <audio> the page attached); Alice
records with a transcript and ends the call; the recording plays in her page, and its transcript names both
speakers. Chromium takes its fake microphone file from a command-line switch, hence one browser per person.
Screenshots go to artifacts/screenshots/app-real-*.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from calls.models import Call
from livekit_emulator.testing import EmulatorProcess, wait_until
from recordings.models import Recording, RecordingEgress
from recordings.tests.conftest import (  # noqa: F401 - fixtures
    eager_tasks,
    emulator,
    livekit,
    local_storage,
    media_root,
    wait_for,
    wait_for_status,
)
from scaiwave.tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from transcription.models import Transcription
from transcription.tests.conftest import espeak, stt_engine  # noqa: F401 - stt_engine is a fixture
from webapp.tests.test_app_browser import (  # noqa: F401 - server and shots are fixtures
    MEDIA_ARGS,
    People,
    create_room,
    open_room,
    ringing_since,
    server,
    shots,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

SAYS = {
    "Alice": "Good morning everyone, the release is ready.",
    "Bob": "Great, I will read it this afternoon.",
}
# The remote <audio> of the other person, measured with an analyser; the peak RMS since the last call.
LEVEL_JS = """() => {
  const audio = document.querySelector("#tiles audio");
  if (!audio || !audio.srcObject) return -1;
  if (!window.__meter || window.__meter.stream !== audio.srcObject) {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    context.createMediaStreamSource(audio.srcObject).connect(analyser);
    window.__meter = { stream: audio.srcObject, analyser, buffer: new Float32Array(analyser.fftSize) };
  }
  const { analyser, buffer } = window.__meter;
  analyser.getFloatTimeDomainData(buffer);
  return Math.sqrt(buffer.reduce((sum, x) => sum + x * x, 0) / buffer.length);
}"""


def microphone_wav(path: Path, text: str) -> float:
    """The fake microphone's file (Chromium loops it): the sentence, then a second of silence. Returns its length."""
    spoken = espeak(path.with_name(path.stem + "-raw.wav"), text)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(spoken), "-af", "apad=pad_dur=1", "-ar", "48000",
         "-ac", "1", "-c:a", "pcm_s16le", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return float(probe.stdout)


@pytest.fixture(scope="module")
def browsers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Any, float]]]:
    """One Chromium per person, each with its own fake microphone: {name: (browser, seconds of its WAV)}."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("microphones")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            launched: dict[str, tuple[Any, float]] = {}
            for name, text in SAYS.items():
                wav = folder / f"{name.lower()}.wav"
                seconds = microphone_wav(wav, text)
                args = [*CHROMIUM_ARGS, *MEDIA_ARGS, f"--use-file-for-fake-audio-capture={wav}"]
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
                launched[name] = (browser, seconds)
            yield launched
            for browser, _ in launched.values():
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def transcribed_recordings(settings: Any, request: pytest.FixtureRequest) -> None:
    """Recordings land in the emulator's output folder, and `transcript: true` ones are transcribed (tiny.en) by
    tasks run where they are queued, as a worker would."""
    from recordings.services import recording as recording_services

    request.getfixturevalue("local_storage")
    request.getfixturevalue("eager_tasks")
    request.getfixturevalue("stt_engine")
    settings.STT_MODEL = "tiny.en"
    settings.RECORDING_READY_HANDLERS = ["transcription.services.transcription_queue_for_recording"]
    recording_services._ready_handlers.cache_clear()
    request.addfinalizer(recording_services._ready_handlers.cache_clear)


def heard_level(page: Any, timeout: float = 30.0) -> float:
    """Wait until the page's remote audio is louder than silence; return the level it reached."""
    levels: list[float] = []

    def loud() -> bool:
        levels.append(float(page.evaluate(LEVEL_JS)))
        return levels[-1] > 0.01

    try:
        wait_until(loud, timeout=timeout, interval=0.1)
    except TimeoutError:
        raise AssertionError(f"only silence was heard: last levels {levels[-10:]}") from None
    return levels[-1]


@pytest.mark.usefixtures("transcribed_recordings")
def test_alice_and_bob_hear_each_other_and_the_recording_plays_with_both_speakers_in_its_transcript(
    browsers: dict[str, tuple[Any, float]], request: pytest.FixtureRequest, settings: Any
) -> None:
    base: str = request.getfixturevalue("server")
    emu: EmulatorProcess = request.getfixturevalue("livekit")
    folder: Path = request.getfixturevalue("shots")
    emu.control.config(speed=1.0)  # real media runs at wall speed
    settings.PUBLIC_BASE_URL = base  # the recording's download URL points at this server
    crowds = {name: People(browser, base) for name, (browser, _) in browsers.items()}
    for crowd in crowds.values():
        request.addfinalizer(crowd.close)
    alice, bob = crowds["Alice"].sign_in("Alice"), crowds["Bob"].sign_in("Bob")
    create_room(alice, "standup", "Bob")
    open_room(bob, "standup")

    alice.click("#call-audio")
    ringing_since(bob)
    bob.click("#ring-answer")
    for page in (alice, bob):
        page.wait_for_selector("#connection-state[data-state=connected]", timeout=30_000)
    alice.wait_for_selector("#view-call[data-phase=active]", timeout=30_000)
    call = Call.objects.get(room__name="standup")
    wait_until(lambda: Call.objects.get(pk=call.pk).status == Call.Status.ACTIVE, timeout=30)

    levels = {"Alice hears Bob": heard_level(alice), "Bob hears Alice": heard_level(bob)}
    print("remote audio levels (RMS):", levels)
    alice.screenshot(path=str(folder / "app-real-1-alice-in-call.png"), full_page=True)
    bob.screenshot(path=str(folder / "app-real-2-bob-in-call.png"), full_page=True)

    # Alice records (with a transcript) while both microphones loop their sentence, then ends the call.
    alice.click("#toggle-rec")
    alice.wait_for_selector("#rec-badge", state="visible")
    recording = wait_for(lambda: Recording.objects.filter(call_id=call.pk).first(), timeout=30)
    wait_for_status(recording.pk, Recording.Status.RECORDING, timeout=30)

    def all_egress_active() -> bool:
        ids = set(RecordingEgress.objects.filter(recording=recording).values_list("egress_id", flat=True))
        active = {e["egress_id"] for e in emu.control.state()["egress"] if e["status"] == "EGRESS_ACTIVE"}
        return len(ids) == 3 and ids <= active  # the composite and one per microphone

    wait_for(all_egress_active, timeout=30)
    alice.screenshot(path=str(folder / "app-real-3-alice-recording.png"), full_page=True)
    # Talk time, not an assertion: each loop of a WAV is one whole sentence, so two loops hold one at least.
    time.sleep(2 * max(seconds for _, seconds in browsers.values()) + 0.5)
    alice.click("#toggle-rec")
    alice.wait_for_selector("#rec-badge", state="hidden")
    alice.click("#end-all")
    for page in (alice, bob):
        page.wait_for_selector("#view-summary[data-status=ended]", timeout=30_000)

    done = wait_for_status(recording.pk, Recording.Status.READY, Recording.Status.FAILED, timeout=60)
    assert done.status == Recording.Status.READY, done.failure_reason
    transcription = wait_for(
        lambda: Transcription.objects.filter(recording_id=recording.pk, status__in=["completed", "failed"]).first(),
        timeout=120,
    )
    assert transcription.status == "completed", transcription.error

    # The summary (refreshed, as a person would once it is ready) plays the recording and shows the transcript.
    alice.click("#summary-refresh")
    alice.wait_for_selector("#summary-recordings audio.player")
    transcript = alice.wait_for_selector("#summary-recordings pre.transcript", timeout=30_000).inner_text()
    segments = [(s.speaker_name, s.start, s.text) for s in transcription.segments.order_by("index")]
    # One line per segment: "[HH:MM:SS] Speaker: text".
    said: dict[str, set[str]] = {}
    for line in filter(None, transcript.splitlines()):
        parsed = re.fullmatch(r"\[[\d:]+\] ([^:]+): (.*)", line)
        assert parsed, (transcript, segments)
        said.setdefault(parsed[1], set()).update(re.findall(r"[a-z']+", parsed[2].lower()))
    assert set(said) == set(SAYS), (transcript, segments)
    for name, sentence in SAYS.items():
        assert said[name] & set(re.findall(r"[a-z']+", sentence.lower())), (transcript, segments)
    alice.evaluate(
        "async () => { const player = document.querySelector('#summary-recordings audio.player');"
        " player.muted = true; await player.play(); }"
    )
    alice.wait_for_function(
        "() => document.querySelector('#summary-recordings audio.player').currentTime > 0.5", timeout=30_000
    )
    duration = alice.evaluate("document.querySelector('#summary-recordings audio.player').duration")
    print("recording duration in the page, s:", duration, "transcript:", transcript)
    alice.screenshot(path=str(folder / "app-real-4-alice-summary-playing.png"), full_page=True)
