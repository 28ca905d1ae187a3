"""Real media through the emulator's /rtc: the official `livekit` Python SDK publishes speech, another one hears it.

The clients are the unmodified real-time SDK (livekit 1.2.0, LiveKit's Rust engine); the tokens are ScaiWave's own
(rooms.livekit_gateway.mint_token); what the subscriber receives is transcribed by the project's speech engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
from livekit import api

from livekit_emulator.testing import EmulatorProcess, wait_until
from rooms.livekit_gateway import mint_token
from transcription.tests.live_audio import pcm48k, silence48k

from .media_clients import connect, espeak, normalise, play, publish_microphone, publish_pcm, record_first_audio
from .test_egress import PcmReceiver

SPOKEN = "Good morning everyone, the release is ready and the weather is sunny and warm today."


def test_speech_published_by_one_sdk_client_is_heard_by_another_with_wer_at_most_ten_percent(
    emu: EmulatorProcess, settings: Any, stt_engine: Any, tmp_path: Path
) -> None:
    settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = emu.api_key, emu.api_secret
    speaker = mint_token(room_name="standup", identity="alice", role="participant").token
    listener = mint_token(room_name="standup", identity="bob", role="viewer").token
    speech = silence48k(0.3) + pcm48k(espeak(tmp_path / "spoken.wav", SPOKEN)) + silence48k(1.0)

    async def call() -> bytes:
        bob = await connect(emu, listener)
        heard = record_first_audio(bob)
        alice = await connect(emu, speaker)
        try:
            await publish_pcm(alice, speech)
            await asyncio.sleep(0.5)
        finally:
            await alice.disconnect()
            await bob.disconnect()
        return bytes(heard)

    received = asyncio.run(asyncio.wait_for(call(), 60))

    samples = np.frombuffer(received, dtype=np.int16)
    assert samples.size > 0.8 * (len(speech) // 2), f"heard {samples.size / 48000:.2f} s of {len(speech) / 96000:.2f} s"
    text = stt_engine.transcribe_pcm(received, sample_rate=48000).text
    error = jiwer.wer(normalise(SPOKEN), normalise(text))
    assert error <= 0.10, f"WER {error:.2f}: heard {text!r}"


def track_published(emu: EmulatorProcess, track_sid: str) -> bool:
    rooms = emu.control.state()["rooms"]
    return any(t["sid"] == track_sid for r in rooms for p in r["participants"] for t in p["tracks"])


@pytest.fixture
def pcm_receiver() -> Iterator[PcmReceiver]:
    receiver = PcmReceiver()
    yield receiver
    receiver.close()


def test_egress_records_and_streams_what_a_real_client_said(
    emu: EmulatorProcess, stt_engine: Any, tmp_path: Path, pcm_receiver: PcmReceiver
) -> None:
    emu.control.config(speed=1.0)  # real media runs at wall speed
    speech = silence48k(0.3) + pcm48k(espeak(tmp_path / "spoken.wav", SPOKEN)) + silence48k(1.0)

    async def call() -> str:
        alice = await connect(emu, emu.token("alice", "standup"))
        publication, source = await publish_microphone(alice)
        # As ScaiWave does, start egress once the track is published (its media arrived), not at the SDK's ack.
        await asyncio.to_thread(wait_until, lambda: track_published(emu, publication.sid), timeout=10)
        async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
            composite = await client.egress.start_room_composite_egress(
                api.RoomCompositeEgressRequest(
                    room_name="standup", audio_only=True, file_outputs=[api.EncodedFileOutput(filepath="")]
                )
            )
            await client.egress.start_track_egress(
                api.TrackEgressRequest(room_name="standup", track_id=publication.sid, websocket_url=pcm_receiver.url)
            )
            await asyncio.to_thread(emu.control.wait_for_egress, composite.egress_id, ("EGRESS_ACTIVE",), timeout=5)
            await play(source, speech)
            await asyncio.sleep(0.5)
            await client.egress.stop_egress(api.StopEgressRequest(egress_id=composite.egress_id))
        await alice.disconnect()
        return composite.egress_id

    egress_id = asyncio.run(asyncio.wait_for(call(), 60))

    done = emu.control.wait_for_egress(egress_id, timeout=30)
    assert done["status"] == "EGRESS_COMPLETE", done
    recorded = stt_engine.transcribe_file(done["file_results"][0]["location"])[0].text
    assert jiwer.wer(normalise(SPOKEN), normalise(recorded)) <= 0.10, f"the recording says {recorded!r}"
    states = [(e["egress_id"], e["status"]) for e in emu.control.state()["egress"]]
    assert pcm_receiver.closed.wait(30), f"the track egress kept its websocket open: {states}, {emu.logs()[-2000:]}"
    streamed = stt_engine.transcribe_pcm(bytes(pcm_receiver.audio), sample_rate=48000).text
    assert jiwer.wer(normalise(SPOKEN), normalise(streamed)) <= 0.10, f"the live stream says {streamed!r}"
