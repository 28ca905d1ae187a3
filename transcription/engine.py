"""The speech-to-text engine: faster-whisper (CTranslate2, int8 on CPU) behind a small interface.

    engine = engine_get()                       # loaded once per process, then cached
    result = engine.transcribe_file("call.m4a", language="en")
    result = engine.transcribe_samples(pcm_float32_16k, offset=12.5)   # a chunk of a live stream

A streaming recognizer is built on `transcribe_samples`: buffer PCM (`audio.pcm16_to_float`), cut at pauses
(faster-whisper's bundled Silero VAD), transcribe each utterance with `offset` = its start in the stream.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings

from transcription.audio import SAMPLE_RATE, Samples, audio_channel, audio_measure, pcm16_to_float
from transcription.model_files import ModelSource, model_source_resolve

# Called with (seconds of audio done, total seconds) while a transcription runs.
ProgressCallback = Callable[[float, float], None]


class UnsupportedLanguage(ValueError):
    """The BCP-47 tag names a language Whisper does not know."""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "probability": self.probability}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    confidence: float  # exp(average token log-probability), 0..1
    language: str


@dataclass
class TranscriptionResult:
    segments: list[Segment]
    language: str
    language_probability: float
    duration: float
    channel: int | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()


def _whisper_language_codes() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


# BCP-47 primary subtags that Whisper spells differently.
_BCP47_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "nb": "no", "nn": "no", "fil": "tl", "zh": "zh"}


def whisper_language_for(tag: str | None) -> str | None:
    """Map a BCP-47 tag ("en-US", "pt-BR", "zh-Hant") to Whisper's code ("en", "pt", "zh").

    None, "" or "auto" mean: detect the language. Raises UnsupportedLanguage for a language Whisper lacks.
    """
    if not tag or tag.lower() == "auto":
        return None
    primary = tag.replace("_", "-").split("-")[0].lower()
    primary = _BCP47_ALIASES.get(primary, primary)
    if primary not in _whisper_language_codes():
        raise UnsupportedLanguage(f"{tag!r} is not a language the speech-to-text engine knows.")
    return primary


class SpeechEngine:
    """One loaded Whisper model. Thread-safe for concurrent `transcribe_*` calls (CTranslate2 queues them)."""

    def __init__(self, source: ModelSource, *, compute_type: str, device: str, threads: int) -> None:
        from faster_whisper import WhisperModel

        if source.is_local:
            # The packaged models are complete folders; make sure no library reaches for the hub anyway.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.source = source
        self.model = WhisperModel(
            source.path_or_hub_name,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            local_files_only=source.is_local,
        )
        self.multilingual = bool(self.model.model.is_multilingual)

    @property
    def name(self) -> str:
        return self.source.name

    def transcribe_samples(
        self,
        samples: Samples,
        *,
        language: str | None = None,
        offset: float = 0.0,
        word_timestamps: bool | None = None,
        vad_filter: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> TranscriptionResult:
        """Transcribe 16 kHz mono float32 samples. `offset` (seconds) is added to every time returned.

        `language` is a Whisper code (see whisper_language_for) or None to detect it (on the first piece, then
        kept). An English-only model always decodes English. Audio longer than STT_CHUNK_SECONDS is cut at its
        quietest moments into pieces of about that length (see transcribe_blocks).
        """
        return self.transcribe_blocks(
            [samples],
            duration=len(samples) / SAMPLE_RATE,
            language=language,
            offset=offset,
            word_timestamps=word_timestamps,
            vad_filter=vad_filter,
            progress=progress,
        )

    def transcribe_blocks(
        self,
        blocks: Iterable[Samples],
        *,
        duration: float | None = None,
        language: str | None = None,
        offset: float = 0.0,
        word_timestamps: bool | None = None,
        vad_filter: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> TranscriptionResult:
        """Transcribe a stream of 16 kHz mono float32 blocks (audio.audio_channel) as one recording.

        Blocks are gathered until a piece of about STT_CHUNK_SECONDS can be cut at its quietest 100 ms (a pause, so
        no word is cut in two); each piece is transcribed and dropped. Memory holds at most one piece, a cut's
        search window and one block, whatever the length. `duration` (seconds, when known) scales `progress`.
        """
        if not self.multilingual:
            language = "en"
        chunk = int(settings.STT_CHUNK_SECONDS * SAMPLE_RATE)
        search = int(_CUT_SEARCH_SECONDS * SAMPLE_RATE)
        segments: list[Segment] = []
        detected, probability = language or "", 1.0 if language else 0.0
        buffer: Samples = np.zeros(0, dtype=np.float32)
        consumed = 0  # samples transcribed before buffer[0]
        total = duration or 0.0

        def run_piece(piece: Samples) -> None:
            nonlocal detected, probability
            piece_start = consumed / SAMPLE_RATE
            if len(piece) / SAMPLE_RATE < 0.05:
                return

            def piece_progress(done: float, _total: float, base: float = piece_start) -> None:
                if progress is not None:
                    whole = max(total, base + done)
                    progress(min(base + done, whole), whole)

            piece_segments, info = self._transcribe_piece(
                piece,
                language=language or (detected or None),
                offset=offset + piece_start,
                word_timestamps=settings.STT_WORD_TIMESTAMPS if word_timestamps is None else word_timestamps,
                vad_filter=settings.STT_VAD_FILTER if vad_filter is None else vad_filter,
                progress=piece_progress,
            )
            segments.extend(piece_segments)
            if not detected:
                detected, probability = info.language, float(info.language_probability)

        for block in blocks:
            buffer = np.concatenate([buffer, block.astype(np.float32, copy=False)]) if len(buffer) else block
            while chunk > 0 and len(buffer) > chunk + search:
                cut = _quiet_cut(buffer, chunk, search)
                run_piece(buffer[:cut])
                consumed += cut
                buffer = buffer[cut:].copy()  # a copy: the transcribed piece's memory is released
        run_piece(buffer)
        heard = (consumed + len(buffer)) / SAMPLE_RATE
        if progress is not None:
            progress(heard, heard)
        return TranscriptionResult(segments, detected or language or "en", probability, heard)

    def _transcribe_piece(
        self,
        samples: Samples,
        *,
        language: str | None,
        offset: float,
        word_timestamps: bool,
        vad_filter: bool,
        progress: ProgressCallback,
    ) -> tuple[list[Segment], Any]:
        piece_duration = len(samples) / SAMPLE_RATE
        raw_segments, info = self.model.transcribe(
            samples,
            language=language,
            beam_size=settings.STT_BEAM_SIZE,
            temperature=list(settings.STT_TEMPERATURES),
            word_timestamps=word_timestamps,
            vad_filter=vad_filter,
            condition_on_previous_text=False,
        )
        segments: list[Segment] = []
        for raw in raw_segments:  # a generator: decoding happens as it is consumed
            text = raw.text.strip()
            if text and not _is_hallucination(raw.avg_logprob, raw.no_speech_prob):
                words = tuple(
                    Word(
                        start=round(float(w.start) + offset, 3),
                        end=round(float(w.end) + offset, 3),
                        text=w.word.strip(),
                        probability=round(float(w.probability), 4),
                    )
                    for w in (raw.words or [])
                    if w.word.strip()
                )
                segments.append(
                    Segment(
                        start=round(float(raw.start) + offset, 3),
                        end=round(float(raw.end) + offset, 3),
                        text=text,
                        words=words,
                        confidence=round(min(1.0, math.exp(float(raw.avg_logprob))), 4),
                        language=info.language,
                    )
                )
            progress(min(float(raw.end), piece_duration), piece_duration)
        return segments, info

    def transcribe_pcm(
        self, pcm16: bytes, *, sample_rate: int = SAMPLE_RATE, language: str | None = None, offset: float = 0.0
    ) -> TranscriptionResult:
        """Transcribe little-endian 16-bit mono PCM (a chunk of a live track) starting at `offset` seconds."""
        samples = pcm16_to_float(pcm16)
        if sample_rate != SAMPLE_RATE:
            samples = _resample(samples, sample_rate)
        return self.transcribe_samples(samples, language=language, offset=offset)

    def transcribe_file(
        self,
        source: str | Path | IO[bytes],
        *,
        language: str | None = None,
        split_channels: bool = False,
        max_seconds: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[TranscriptionResult]:
        """Decode (streaming) and transcribe a media file: one result, or one per channel with `split_channels` on
        a stereo file (each result's `channel` set, times on the file's clock).

        `max_seconds` defaults to MAX_AUDIO_SECONDS. Raises audio.AudioDecodeError, audio.AudioTooLong.
        """
        cap = settings.MAX_AUDIO_SECONDS if max_seconds is None else max_seconds
        facts = audio_measure(source, split_channels=split_channels, max_seconds=cap)
        channels: list[int | None] = [None] if facts.channels == 1 else [0, 1]
        total = facts.duration * len(channels)
        results = []
        for index, channel in enumerate(channels):
            done_before = facts.duration * index

            def channel_progress(done: float, _total: float, base: float = done_before) -> None:
                if progress is not None:
                    progress(base + done, total)

            result = self.transcribe_blocks(
                audio_channel(source, channel=channel, max_seconds=cap),
                duration=facts.duration,
                language=language,
                progress=channel_progress,
            )
            result.channel = channel
            results.append(result)
        return results


def segment_split_at_pauses(segment: Segment, *, pause: float) -> list[Segment]:
    """`segment` cut where its words pause for more than `pause` seconds; each piece spans its own words.

    Whisper (more so behind the VAD, which removes the silence first) can return one segment for speech either side
    of a long pause: "Good morning Bob." ... 8 s ... "Yes, it is ready." as one segment from 0 s to 11 s. Merged with
    another voice, that segment's start sorts the reply before the question it answers. Without word times the
    segment is kept whole.
    """
    words = segment.words
    if len(words) < 2:
        return [segment]
    groups: list[list[Word]] = [[words[0]]]
    for previous, word in itertools.pairwise(words):
        if word.start - previous.end > pause:
            groups.append([])
        groups[-1].append(word)
    if len(groups) == 1:
        return [segment]
    return [
        Segment(
            start=group[0].start,
            end=group[-1].end,
            text=" ".join(w.text for w in group),
            words=tuple(group),
            confidence=segment.confidence,
            language=segment.language,
        )
        for group in groups
    ]


# Whisper invents a short phrase ("I'm sorry.", "Thank you.") over trailing silence or noise: such a segment has
# a very low mean token log-probability AND a raised no-speech probability. Real speech, even mumbled, rarely has
# both. (Measured on the LibriVox clips: hallucinations at -1.7 / 0.43, real segments above -0.5 / below 0.05.)
HALLUCINATION_MAX_LOGPROB = -1.0
HALLUCINATION_MIN_NO_SPEECH = 0.3


def _is_hallucination(avg_logprob: float, no_speech_prob: float) -> bool:
    return avg_logprob < HALLUCINATION_MAX_LOGPROB and no_speech_prob > HALLUCINATION_MIN_NO_SPEECH


# How far around each nominal cut the quietest 100 ms is looked for (seconds).
_CUT_SEARCH_SECONDS = 5.0
_CUT_FRAME = SAMPLE_RATE // 10


def _quiet_cut(samples: Samples, nominal: int, search: int) -> int:
    """Where to cut `samples` near index `nominal`: the middle of the quietest 100 ms within `search` samples of
    it (a pause, so no word is cut in two)."""
    lo, hi = max(_CUT_FRAME, nominal - search), min(len(samples) - _CUT_FRAME, nominal + search)
    window = samples[lo:hi]
    frames = len(window) // _CUT_FRAME
    if frames == 0:
        return nominal
    energy = np.square(window[: frames * _CUT_FRAME].reshape(frames, _CUT_FRAME)).mean(axis=1)
    return lo + int(np.argmin(energy)) * _CUT_FRAME + _CUT_FRAME // 2


def _resample(samples: Samples, rate: int) -> Samples:
    """Linear resampling to 16 kHz for raw PCM chunks (files go through FFmpeg's resampler instead)."""
    if len(samples) == 0:
        return samples
    target_length = round(len(samples) * SAMPLE_RATE / rate)
    positions = np.linspace(0, len(samples) - 1, num=target_length)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


_engines: dict[tuple[str, str, str, int], SpeechEngine] = {}
_engines_lock = threading.Lock()


def engine_get(model: str | None = None) -> SpeechEngine:
    """The process's engine for `model` (default STT_MODEL), loaded on first use and kept for the process.

    Raises model_files.ModelUnavailable when the model is not on this machine.
    """
    name = model or settings.STT_MODEL
    key = (name, settings.STT_COMPUTE_TYPE, settings.STT_DEVICE, settings.STT_THREADS)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = SpeechEngine(
                model_source_resolve(name),
                compute_type=settings.STT_COMPUTE_TYPE,
                device=settings.STT_DEVICE,
                threads=settings.STT_THREADS,
            )
            _engines[key] = engine
    return engine
