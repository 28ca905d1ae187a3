"""A whole ScaiWave call with real clients: document 000 over HTTP, the official `livekit` SDK for media.

Alice initiates and Bob joins with user JWTs; each connects the real-time SDK with the URL and token ScaiWave gave
them; the emulator's own webhooks make the call `active`; Alice records with `transcript: true` while each speaks a
sentence (espeak-ng); the post-call transcript must say both sentences (WER <= 15 %) with the right speaker on each
line. The SDK clients run on an asyncio loop in a thread so the test can keep polling ScaiWave meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import ctranslate2
import httpx
import jiwer
import pytest
from livekit import rtc

from livekit_emulator.testing import EmulatorProcess, wait_until
from livekit_emulator.tests.media_clients import espeak, normalise, play, publish_microphone
from recordings.models import Recording, RecordingEgress
from recordings.tests.conftest import (  # noqa: F401
    eager_tasks,
    emulator,
    livekit,
    local_storage,
    make_room,
    media_root,
    wait_for,
    wait_for_status,
    webhooks_to_scaiwave,
)
from transcription.models import Transcription
from transcription.tests.conftest import stt_engine  # noqa: F401
from transcription.tests.live_audio import pcm48k, silence48k

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ALICE_SAYS = "Good morning everyone, the release is ready and the weather is sunny and warm today."
BOB_SAYS = "Great, I will read it this afternoon."
T = TypeVar("T")


class ClientLoop:
    """An asyncio loop in a thread for the SDK clients; `run` waits for one coroutine from the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def client_loop() -> Iterator[ClientLoop]:
    loop = ClientLoop()
    yield loop
    loop.close()


@pytest.fixture
def transcribe_when_ready(settings: Any, request: pytest.FixtureRequest) -> None:
    """The transcription app's ready hook, with the session's tiny.en engine and a fixed sampling seed."""
    from recordings.services import recording as recording_services

    settings.STT_MODEL = "tiny.en"
    settings.RECORDING_READY_HANDLERS = ["transcription.services.transcription_queue_for_recording"]
    recording_services._ready_handlers.cache_clear()
    request.addfinalizer(recording_services._ready_handlers.cache_clear)
    ctranslate2.set_random_seed(20261121)


async def join(url: str, token: str) -> tuple[rtc.Room, rtc.AudioSource]:
    """Connect with what ScaiWave handed out, publish a microphone and let media flow."""
    room = rtc.Room()
    await room.connect(url, token)
    _, source = await publish_microphone(room)
    await play(source, silence48k(0.5))
    return room, source


@pytest.mark.usefixtures("stt_engine", "transcribe_when_ready")
def test_two_sdk_clients_make_a_call_whose_recording_transcript_says_who_said_what(
    acme: Any, request: pytest.FixtureRequest, client_loop: ClientLoop, tmp_path: Path
) -> None:
    # Fixtures imported from the recordings tests (their names are module globals here, hence getfixturevalue).
    server_url = request.getfixturevalue("webhooks_to_scaiwave").url
    emu: EmulatorProcess = request.getfixturevalue("livekit")
    storage_root: Path = request.getfixturevalue("local_storage")
    emu.control.config(speed=1.0)  # real media runs at wall speed
    make_room(acme, "standup", {"alice": 50, "bob": 0})
    http = httpx.Client(base_url=server_url, timeout=30)
    alice = {"Authorization": f"Bearer {acme.user_token('alice', name='Alice')}"}
    bob = {"Authorization": f"Bearer {acme.user_token('bob', name='Bob')}"}

    started = http.post("/v1/calls/initiate", json={"room_id": "standup", "type": "audio"}, headers=alice)
    assert started.status_code == 201, started.text
    ticket = started.json()["data"]
    call_id = ticket["call_id"]
    joined = http.post(f"/v1/calls/{call_id}/join", headers=bob)
    assert joined.status_code == 200, joined.text
    bob_ticket = joined.json()["data"]
    assert ticket["livekit_url"] == bob_ticket["livekit_url"] == emu.ws_url

    alice_room, alice_mic = client_loop.run(join(ticket["livekit_url"], ticket["livekit_token"]))
    bob_room, bob_mic = client_loop.run(join(bob_ticket["livekit_url"], bob_ticket["livekit_token"]))
    try:

        def call() -> dict[str, Any]:
            response = http.get(f"/v1/calls/{call_id}", headers=alice)
            assert response.status_code == 200, response.text
            return dict(response.json()["data"])

        def both_talking() -> dict[str, Any] | None:
            current = call()
            people = {p["participant_id"]: p for p in current["participants"]}
            in_call = {k for k, p in people.items() if p["joined_at"] and not p["left_at"] and p["audio_on"]}
            return current if in_call == {"alice", "bob"} else None

        assert wait_until(both_talking, timeout=30)["status"] == "active"

        recording = http.post(
            f"/v1/calls/{call_id}/recording/start",
            json={"audio": True, "video": False, "transcript": True},
            headers=alice,
        )
        assert recording.status_code == 201, recording.text
        recording_id = recording.json()["data"]["id"]
        wait_for_status(recording_id, Recording.Status.RECORDING, timeout=30)

        def all_egress_active() -> bool:
            ids = set(RecordingEgress.objects.filter(recording_id=recording_id).values_list("egress_id", flat=True))
            active = {e["egress_id"] for e in emu.control.state()["egress"] if e["status"] == "EGRESS_ACTIVE"}
            return len(ids) == 3 and ids <= active  # the composite and one per microphone

        wait_for(all_egress_active, timeout=30)

        # One after the other, each stream continuous: Alice speaks while Bob is silent, then the other way round.
        alice_speech = pcm48k(espeak(tmp_path / "alice.wav", ALICE_SAYS))
        bob_speech = pcm48k(espeak(tmp_path / "bob.wav", BOB_SAYS))
        tail = silence48k(1.0)

        async def talk() -> None:
            await asyncio.gather(
                play(alice_mic, alice_speech + b"\0" * len(bob_speech) + tail),
                play(bob_mic, b"\0" * len(alice_speech) + bob_speech + tail),
            )

        client_loop.run(talk())
        stopped = http.post(f"/v1/calls/{call_id}/recording/stop", headers=alice)
        assert stopped.status_code == 200, stopped.text
    finally:
        client_loop.run(alice_room.disconnect())
        client_loop.run(bob_room.disconnect())

    done = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED, timeout=60)
    assert done.status == Recording.Status.READY, done.failure_reason
    assert (storage_root / done.storage_key).stat().st_size > 0
    transcription = wait_for(
        lambda: Transcription.objects.filter(recording_id=recording_id, status__in=["completed", "failed"]).first(),
        timeout=120,
    )
    assert transcription.status == "completed", transcription.error

    lines = [(s.speaker_name, normalise(s.text)) for s in transcription.segments.order_by("index")]
    heard = " ".join(text for _, text in lines)
    error = jiwer.wer(normalise(f"{ALICE_SAYS} {BOB_SAYS}"), heard)
    assert error <= 0.15, f"WER {error:.2f}: {lines}"
    # The right speaker on each line: every line is nearer its own speaker's sentence than the other's.
    said = {"Alice": normalise(ALICE_SAYS), "Bob": normalise(BOB_SAYS)}
    assert {speaker for speaker, _ in lines} == set(said), lines
    for speaker, text in lines:
        other = next(s for s in said if s != speaker)
        assert set(text.split()) & set(said[speaker].split()), lines
        assert jiwer.wer(said[speaker], text) < jiwer.wer(said[other], text), lines
