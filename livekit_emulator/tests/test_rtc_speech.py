"""Real media through the emulator's /rtc: the official `livekit` Python SDK publishes speech, another one hears it.

The clients are the unmodified real-time SDK (livekit 1.2.0, LiveKit's Rust engine); the tokens are ScaiWave's own
(rooms.livekit_gateway.mint_token); what the subscriber receives is transcribed by the project's speech engine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from livekit_emulator.testing import EmulatorProcess
from rooms.livekit_gateway import mint_token
from transcription.tests.live_audio import pcm48k, silence48k

from .media_clients import connect, espeak, normalise, publish_pcm, record_first_audio

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
