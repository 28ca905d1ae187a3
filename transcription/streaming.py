"""Cutting a live PCM stream into utterances for the engine: the base a streaming recognizer is built on.

    buffer = UtteranceBuffer(sample_rate=48_000)
    for frame in websocket_frames:                      # 16-bit little-endian mono PCM, any frame size
        for utterance in buffer.feed(frame):
            result = engine_get().transcribe_samples(utterance.samples, offset=utterance.start)
    for utterance in buffer.flush(): ...                # at the end of the stream

An utterance ends after `min_silence` seconds below the voice threshold (the speaker paused) or when it reaches
`max_utterance` seconds (a long monologue is still delivered in time). Voice activity is frame energy against a
threshold: cheap enough to run on every frame of every track; the engine's VAD filter still trims each utterance.
Times are seconds on the stream's clock (samples fed so far), so segments line up with the track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transcription.audio import SAMPLE_RATE, Samples, pcm16_to_float

FRAME_SECONDS = 0.03


@dataclass(frozen=True)
class Utterance:
    start: float  # seconds from the start of the stream
    samples: Samples  # 16 kHz mono float32

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE


class UtteranceBuffer:
    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        threshold: float = 0.01,
        min_silence: float = 0.5,
        max_utterance: float = 15.0,
        padding: float = 0.2,
    ) -> None:
        if sample_rate % SAMPLE_RATE and SAMPLE_RATE % sample_rate:
            raise ValueError("sample_rate must be a multiple or a divisor of 16000 (8, 16, 32, 48 kHz)")
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.frame = int(FRAME_SECONDS * SAMPLE_RATE)
        self.silence_frames_to_end = max(1, round(min_silence / FRAME_SECONDS))
        self.max_samples = int(max_utterance * SAMPLE_RATE)
        self.padding = int(padding * SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet classified
        self._consumed = 0  # 16 kHz samples classified so far (the stream clock)
        self._voice: list[Samples] = []
        self._voice_start = 0
        self._silent_frames = 0
        self._lead_in = np.zeros(0, dtype=np.float32)  # the silence just before speech, kept as padding

    def _to_16k(self, samples: Samples) -> Samples:
        if self.sample_rate == SAMPLE_RATE:
            return samples
        if self.sample_rate > SAMPLE_RATE:
            step = self.sample_rate // SAMPLE_RATE
            usable = len(samples) - len(samples) % step
            # Average each group of samples: a crude low-pass before decimating, enough for speech.
            return samples[:usable].reshape(-1, step).mean(axis=1).astype(np.float32)
        return np.repeat(samples, SAMPLE_RATE // self.sample_rate).astype(np.float32)

    def feed(self, pcm16: bytes) -> list[Utterance]:
        """Add PCM; return the utterances it completed (usually none or one)."""
        self._pending = np.concatenate([self._pending, self._to_16k(pcm16_to_float(pcm16))])
        done: list[Utterance] = []
        while len(self._pending) >= self.frame:
            frame, self._pending = self._pending[: self.frame], self._pending[self.frame :]
            utterance = self._classify(frame)
            if utterance is not None:
                done.append(utterance)
        return done

    def _classify(self, frame: Samples) -> Utterance | None:
        voiced = float(np.sqrt(np.mean(frame**2))) >= self.threshold
        position = self._consumed
        self._consumed += len(frame)
        if not self._voice:
            if voiced:
                self._voice = [self._lead_in, frame]
                self._voice_start = position - len(self._lead_in)
                self._silent_frames = 0
            else:
                self._lead_in = np.concatenate([self._lead_in, frame])[-self.padding :] if self.padding else frame[:0]
            return None
        self._voice.append(frame)
        self._silent_frames = 0 if voiced else self._silent_frames + 1
        length = sum(len(part) for part in self._voice)
        if self._silent_frames >= self.silence_frames_to_end or length >= self.max_samples:
            return self._cut()
        return None

    def _cut(self) -> Utterance:
        samples = np.concatenate(self._voice).astype(np.float32)
        utterance = Utterance(start=self._voice_start / SAMPLE_RATE, samples=samples)
        self._voice, self._silent_frames, self._lead_in = [], 0, np.zeros(0, dtype=np.float32)
        return utterance

    def flush(self) -> list[Utterance]:
        """End of stream: the utterance in progress, if any."""
        if self._pending.size:
            if self._voice:
                self._voice.append(self._pending)
            self._consumed += len(self._pending)
            self._pending = np.zeros(0, dtype=np.float32)
        return [self._cut()] if self._voice else []
