"""A live track's PCM, fed in 20 ms frames, is cut into utterances at the speaker's pauses, on the stream clock."""

from __future__ import annotations

import numpy as np

from transcription.audio import SAMPLE_RATE, audio_decode
from transcription.streaming import UtteranceBuffer
from transcription.tests.conftest import librivox_clip, normalise


def _pcm48k(samples: np.ndarray) -> bytes:
    upsampled = np.repeat(samples, 3)  # 16 kHz -> 48 kHz, what LiveKit's track egress streams
    return (np.clip(upsampled, -1, 1) * 32767).astype("<i2").tobytes()


def test_a_stream_is_cut_at_pauses_and_each_utterance_transcribed_on_the_stream_clock(stt_engine) -> None:
    first = audio_decode(librivox_clip("0880")[0]).mono()
    second = audio_decode(librivox_clip("0930")[0]).mono()
    silence = np.zeros(SAMPLE_RATE * 2, dtype=np.float32)
    stream = _pcm48k(np.concatenate([silence, first, silence, second, silence[:SAMPLE_RATE]]))
    buffer = UtteranceBuffer(sample_rate=48_000)

    utterances = []
    frame = 48_000 * 2 // 50  # 20 ms of 16-bit mono
    for at in range(0, len(stream), frame):
        utterances += buffer.feed(stream[at : at + frame])
    utterances += buffer.flush()

    assert len(utterances) == 2
    assert 1.5 <= utterances[0].start <= 2.1 and utterances[0].end < 2.0 + len(first) / SAMPLE_RATE + 0.7
    second_at = 4.0 + len(first) / SAMPLE_RATE
    assert second_at - 0.5 <= utterances[1].start <= second_at + 0.3
    texts = [stt_engine.transcribe_samples(u.samples, offset=u.start) for u in utterances]
    assert "young man" in normalise(texts[0].text)
    assert "amiable himself" in normalise(texts[1].text)
    assert texts[1].segments[0].start >= second_at - 0.5


def test_a_long_monologue_is_delivered_in_pieces() -> None:
    loud = (0.3 * np.sin(np.arange(SAMPLE_RATE * 5) / 5)).astype(np.float32)
    buffer = UtteranceBuffer(max_utterance=2.0)
    pieces = buffer.feed((loud * 32767).astype("<i2").tobytes()) + buffer.flush()
    assert len(pieces) == 3
    assert all(p.end - p.start <= 2.05 for p in pieces)
