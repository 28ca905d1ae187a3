"""The live recognizer: per-track utterance cutting in the event loop, speech-to-text in one process-wide thread.

Which process runs it: the ASGI process that terminates the ingest WebSocket (`/v1/ingest/audio`). PCM arrives
there, and shipping every 20 ms frame of every track through Redis to a Celery worker would add latency and load
for nothing; the model is loaded once per process (engine_get) on the first utterance. A deployment that wants the
recognizer away from its API processes runs a separate ASGI instance for `/v1/ingest/audio` (the `stt-live`
profile) and points TRANSCRIPTION_LIVE_INGEST_URL at it.

Why one thread: on a 2-core machine two concurrent decodes only slow each other down (CTranslate2 already uses
both cores for one), and a single queue makes "how far behind are we" one number: the seconds of speech waiting.
The event loop never decodes: it only classifies frames (cheap numpy) and hands finished utterances over.

Several speakers: utterances that finished while the thread was busy are decoded together, played back to back
with a second of silence between them in one 30 s Whisper window, and the words are handed back to their
utterances by time (word timestamps). One encoder pass instead of one per utterance: on 2 cores the encoder is
most of an utterance's cost, so two or three speakers talking at once wait far less for each other.

Falling behind is visible, never silent: when the speech waiting for the recognizer would exceed
TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS, the new utterance is dropped and its session told (`on_drop`), which marks
it degraded. Partial results are best effort: they are only computed while the recognizer is idle.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from transcription.audio import SAMPLE_RATE, Samples
from transcription.engine import Segment, SpeechEngine, TranscriptionResult, _is_hallucination, engine_get
from transcription.model_files import model_available
from transcription.streaming import Utterance, UtteranceBuffer

logger = logging.getLogger(__name__)

EGRESS_SAMPLE_RATE = 48_000  # LiveKit track egress to a WebSocket: s16le, 48 kHz, mono


# The fast English model a live session uses when nothing else is asked for (see live_model_name).
LIVE_ENGLISH_MODEL = "tiny.en"


def live_model_name(language: str | None = None) -> str:
    """The model for a live session in `language` (a Whisper code; None: not known or detected).

    TRANSCRIPTION_LIVE_MODEL when it is set. Otherwise STT_MODEL, except that an English session uses the
    packaged tiny.en when STT_MODEL is the packaged base and tiny.en is on the machine: on 2 CPU cores base's
    final segments come 2.0-2.4 s after the speaker pauses (p95, 1-3 simultaneous speakers), tiny.en's
    1.1-1.7 s, inside the 2 s live target, with WER 5.6% live on the LibriVox clips (docs/transcription.md).
    Post-call transcription keeps STT_MODEL.
    """
    if settings.TRANSCRIPTION_LIVE_MODEL:
        return str(settings.TRANSCRIPTION_LIVE_MODEL)
    if language == "en" and settings.STT_MODEL == "base" and model_available(LIVE_ENGLISH_MODEL):
        return LIVE_ENGLISH_MODEL
    return str(settings.STT_MODEL)


# Packing several speakers' utterances into one decode: silence between them, and the window they must fit.
PACK_GAP_SECONDS = 1.0
PACK_WINDOW_SECONDS = 28.0


@dataclass
class _QueuedUtterance:
    samples: Samples
    offset: float
    seconds: float
    model: str
    language: str | None
    deliver: Callable[[TranscriptionResult], None]
    done: Future[None]


class LiveRecognizer:
    """One decoding thread for the process, with its backlog (seconds of speech queued, not yet started)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-live")
        self._lock = threading.Lock()
        self._backlog = 0.0
        self._running = 0
        self._utterances: list[_QueuedUtterance] = []

    @property
    def backlog_seconds(self) -> float:
        with self._lock:
            return self._backlog

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._running == 0 and self._backlog <= 0.0

    def _wrap(self, job: Callable[[], None], seconds: float) -> Callable[[], None]:
        def run() -> None:
            with self._lock:
                self._backlog = max(0.0, self._backlog - seconds)
                self._running += 1
            try:
                close_old_connections()
                job()
            except Exception:
                logger.exception("live transcription job failed")
            finally:
                close_old_connections()
                with self._lock:
                    self._running -= 1

        return run

    def submit(self, job: Callable[[], None], *, seconds: float) -> Future[None] | None:
        """Queue a final transcription of `seconds` of speech; None (not queued) if that would exceed the
        backlog limit."""
        with self._lock:
            if self._backlog + seconds > settings.TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS and self._backlog > 0:
                return None
            self._backlog += seconds
        return self._executor.submit(self._wrap(job, seconds))

    def submit_utterance(
        self,
        *,
        samples: Samples,
        offset: float,
        model: str,
        language: str | None,
        deliver: Callable[[TranscriptionResult], None],
    ) -> Future[None] | None:
        """Queue a final transcription of one utterance (times in the result start at `offset`); `deliver` gets
        the result on the recognizer thread. None (not queued) if that would exceed the backlog limit."""
        seconds = len(samples) / SAMPLE_RATE
        item = _QueuedUtterance(samples, offset, seconds, model, language, deliver, Future())
        with self._lock:
            if self._backlog + seconds > settings.TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS and self._backlog > 0:
                return None
            self._backlog += seconds
            self._utterances.append(item)
        self._executor.submit(self._drain_utterances)
        return item.done

    def _take_batch(self) -> list[_QueuedUtterance]:
        """The oldest queued utterance and those after it that fit one window with it (same model, language)."""
        if not self._utterances:
            return []
        first = self._utterances[0]
        batch, length = [first], first.seconds
        for item in self._utterances[1:]:
            if (item.model, item.language) != (first.model, first.language):
                continue
            if length + PACK_GAP_SECONDS + item.seconds > PACK_WINDOW_SECONDS:
                break
            batch.append(item)
            length += PACK_GAP_SECONDS + item.seconds
        taken = {id(item) for item in batch}
        self._utterances = [item for item in self._utterances if id(item) not in taken]
        return batch

    def _drain_utterances(self) -> None:
        # One of these runs per queued utterance; a run finding the queue empty (an earlier run took its
        # utterance into a batch) returns at once.
        with self._lock:
            batch = self._take_batch()
            if not batch:
                return
            self._backlog = max(0.0, self._backlog - sum(item.seconds for item in batch))
            self._running += 1
        try:
            close_old_connections()
            engine = engine_get(batch[0].model)
            pieces = [(item.samples, item.offset) for item in batch]
            results = (
                [live_decode(engine, batch[0].samples, language=batch[0].language, offset=batch[0].offset)]
                if len(batch) == 1
                else live_decode_packed(engine, pieces, language=batch[0].language)
            )
            for item, result in zip(batch, results, strict=True):
                try:
                    item.deliver(result)
                except Exception:
                    logger.exception("live transcription delivery failed")
        except Exception:
            logger.exception("live transcription job failed")
        finally:
            close_old_connections()
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)
            with self._lock:
                self._running -= 1

    def submit_if_idle(self, job: Callable[[], None]) -> Future[None] | None:
        """Queue a best-effort job (a partial result) only when nothing else is waiting or running."""
        with self._lock:
            if self._running or self._backlog > 0:
                return None
            self._running += 1  # reserved now so two partials never queue behind each other
        try:
            return self._executor.submit(self._wrap_reserved(job))
        except RuntimeError:
            with self._lock:
                self._running -= 1
            return None

    def _wrap_reserved(self, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                close_old_connections()
                job()
            except Exception:
                logger.exception("live partial transcription failed")
            finally:
                close_old_connections()
                with self._lock:
                    self._running -= 1

        return run


_recognizer: LiveRecognizer | None = None
_recognizer_lock = threading.Lock()


def recognizer_get() -> LiveRecognizer:
    global _recognizer
    with _recognizer_lock:
        if _recognizer is None:
            _recognizer = LiveRecognizer()
        return _recognizer


@dataclass(frozen=True)
class Heard:
    """What the recognizer made of one utterance (or of the part of it heard so far, for a partial)."""

    utterance_id: str
    start: float  # seconds on the session clock
    end: float
    text: str
    confidence: float | None
    language: str
    final: bool
    speech_end_monotonic: float  # time.monotonic() when the utterance's last sample arrived


@dataclass(frozen=True)
class Dropped:
    utterance_id: str
    seconds: float
    backlog_seconds: float


def _heard_from(
    result: TranscriptionResult, *, utterance_id: str, start: float, end: float, final: bool, arrived: float
) -> Heard:
    text = " ".join(s.text.strip() for s in result.segments if s.text.strip())
    confidences = [s.confidence for s in result.segments]
    return Heard(
        utterance_id=utterance_id,
        start=round(result.segments[0].start if result.segments else start, 3),
        end=round(result.segments[-1].end if result.segments else end, 3),
        text=text,
        confidence=round(float(np.mean(confidences)), 4) if confidences else None,
        language=result.language,
        final=final,
        speech_end_monotonic=arrived,
    )


# Tokens a decode may produce per second of speech (fast speech is ~4 words/s, ~6 tokens/s), plus a margin.
_TOKENS_PER_SECOND = 10
_TOKENS_MARGIN = 16


def live_decode(engine: SpeechEngine, samples: Samples, *, language: str | None, offset: float) -> TranscriptionResult:
    """Decode one utterance with latency bounded for live use: greedy at temperature 0 only (Whisper's fallback
    re-decodes a short unclear fragment at rising temperatures, seconds each), no timestamps pass, and at most
    as many tokens as the speech can hold (a hallucinated loop cannot run to 448 tokens)."""
    duration = len(samples) / SAMPLE_RATE
    if not engine.multilingual:
        language = "en"
    if duration < 0.3:
        return TranscriptionResult([], language or "en", 0.0, duration)
    raw_segments, info = engine.model.transcribe(
        samples,
        language=language,
        beam_size=1,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        word_timestamps=False,
        vad_filter=False,  # the utterance buffer already cut at pauses
        max_new_tokens=int(duration * _TOKENS_PER_SECOND) + _TOKENS_MARGIN,
    )
    segments = []
    for raw in raw_segments:
        text = raw.text.strip()
        if not text or _is_hallucination(raw.avg_logprob, raw.no_speech_prob):
            continue
        segments.append(
            Segment(
                start=round(offset + float(raw.start), 3),
                end=round(offset + min(float(raw.end), duration), 3),
                text=text,
                words=(),
                confidence=round(min(1.0, math.exp(float(raw.avg_logprob))), 4),
                language=info.language,
            )
        )
    return TranscriptionResult(segments, info.language, float(info.language_probability), duration)


def live_decode_packed(
    engine: SpeechEngine, pieces: list[tuple[Samples, float]], *, language: str | None
) -> list[TranscriptionResult]:
    """Decode several utterances (samples, offset) in one window; one result per utterance, in order.

    The utterances are laid back to back with PACK_GAP_SECONDS of silence between them, then: one encoder pass,
    one greedy decode, one alignment pass for word times, and each word goes to the utterance its middle falls
    in (or the nearest one). This calls faster-whisper's steps directly (pinned in requirements.txt) because its
    `transcribe` loop, with word times on, seeks to the last word and decodes the leftover tail as a second
    window, which would cost what the packing saves."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    whisper = engine.model
    language = language if engine.multilingual and language else "en"
    gap = np.zeros(int(SAMPLE_RATE * PACK_GAP_SECONDS), dtype=np.float32)
    spans: list[tuple[float, float]] = []
    parts: list[Samples] = []
    at = 0.0
    for samples, _ in pieces:
        if parts:
            parts.append(gap)
            at += PACK_GAP_SECONDS
        seconds = len(samples) / SAMPLE_RATE
        spans.append((at, at + seconds))
        parts.append(samples.astype(np.float32, copy=False))
        at += seconds

    tokenizer = Tokenizer(whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language)
    features = whisper.feature_extractor(np.concatenate(parts))
    content_frames = min(features.shape[-1] - 1, whisper.feature_extractor.nb_max_frames)
    encoder_output = whisper.encode(pad_or_trim(features[:, :content_frames]))
    prompt = whisper.get_prompt(tokenizer, [], without_timestamps=True)
    (result,) = whisper.model.generate(
        encoder_output,
        [prompt],
        beam_size=1,
        max_length=len(prompt) + int(at * _TOKENS_PER_SECOND) + _TOKENS_MARGIN,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1]) or []),
    )
    tokens = [token for token in result.sequences_ids[0] if token < tokenizer.eot]
    avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
    words: list[list[dict[str, Any]]] = [[] for _ in pieces]
    if tokens and not _is_hallucination(avg_logprob, float(result.no_speech_prob)):
        (aligned,) = whisper.find_alignment(tokenizer, [tokens], encoder_output, content_frames)
        for word in aligned:
            middle = (float(word["start"]) + float(word["end"])) / 2
            index = min(range(len(spans)), key=lambda i: max(spans[i][0] - middle, middle - spans[i][1], 0.0))
            words[index].append(word)
    confidence = round(min(1.0, math.exp(avg_logprob)), 4)
    results = []
    for (_, offset), (span_start, span_end), mine in zip(pieces, spans, words, strict=True):
        duration = span_end - span_start
        text = "".join(str(w["word"]) for w in mine).strip()
        segments = []
        if text:
            start = min(max(0.0, float(mine[0]["start"]) - span_start), duration)
            end = min(max(start, float(mine[-1]["end"]) - span_start), duration)
            segments.append(
                Segment(
                    start=round(offset + start, 3),
                    end=round(offset + end, 3),
                    text=text,
                    words=(),
                    confidence=confidence,
                    language=language,
                )
            )
        results.append(TranscriptionResult(segments, language, 1.0, duration))
    return results


class _Buffer(UtteranceBuffer):
    def voice_so_far(self) -> tuple[float, Samples] | None:
        """(start, samples) of the utterance in progress, for a partial result."""
        if not self._voice:
            return None
        return self._voice_start / SAMPLE_RATE, np.concatenate(self._voice).astype(np.float32)


class TrackStream:
    """One track's PCM -> utterances -> recognizer -> callbacks (called from the recognizer thread).

    `offset` is added to every time so segments are on the session's clock (seconds since it started).
    """

    def __init__(
        self,
        *,
        track_sid: str,
        language: str | None,
        offset: float,
        on_heard: Callable[[Heard], None],
        on_drop: Callable[[Dropped], None],
        partial_results: bool = False,
        sample_rate: int = EGRESS_SAMPLE_RATE,
        recognizer: LiveRecognizer | None = None,
        model: str | None = None,
    ) -> None:
        self.track_sid = track_sid
        self.language = language
        self.offset = offset
        self.on_heard = on_heard
        self.on_drop = on_drop
        self.partial_results = partial_results
        self.recognizer = recognizer or recognizer_get()
        self.model = model or live_model_name()
        self.buffer = _Buffer(
            sample_rate=sample_rate,
            min_silence=settings.TRANSCRIPTION_LIVE_MIN_SILENCE,
            max_utterance=settings.TRANSCRIPTION_LIVE_MAX_UTTERANCE,
        )
        self._count = 0
        self._partial_at = 0.0  # voiced seconds of the current utterance when the last partial was asked
        self.pending: list[Future[None]] = []

    def _utterance_id(self) -> str:
        return f"{self.track_sid}-{self._count}"

    def feed(self, pcm: bytes) -> None:
        for utterance in self.buffer.feed(pcm):
            self._finish(utterance)
        if self.partial_results:
            self._maybe_partial()

    def flush(self) -> None:
        """The speaker stopped (mute, end of stream): the utterance in progress is final now."""
        for utterance in self.buffer.flush():
            self._finish(utterance)

    def _transcribe(self, samples: Samples, start: float) -> TranscriptionResult:
        return live_decode(engine_get(self.model), samples, language=self.language, offset=self.offset + start)

    def _finish(self, utterance: Utterance) -> None:
        utterance_id = self._utterance_id()
        self._count += 1
        self._partial_at = 0.0
        arrived = time.monotonic()
        seconds = len(utterance.samples) / SAMPLE_RATE

        start, end = self.offset + utterance.start, self.offset + utterance.end

        def deliver(result: TranscriptionResult) -> None:
            self.on_heard(
                _heard_from(result, utterance_id=utterance_id, start=start, end=end, final=True, arrived=arrived)
            )

        future = self.recognizer.submit_utterance(
            samples=utterance.samples, offset=start, model=self.model, language=self.language, deliver=deliver
        )
        if future is None:
            self.on_drop(Dropped(utterance_id, round(seconds, 2), round(self.recognizer.backlog_seconds, 2)))
            return
        self.pending = [f for f in self.pending if not f.done()] + [future]

    def _maybe_partial(self) -> None:
        current = self.buffer.voice_so_far()
        if current is None:
            return
        start, samples = current
        voiced = len(samples) / SAMPLE_RATE
        if voiced - self._partial_at < settings.TRANSCRIPTION_LIVE_PARTIAL_INTERVAL:
            return
        utterance_id = self._utterance_id()
        arrived = time.monotonic()

        def job() -> None:
            result = self._transcribe(samples, start)
            heard = _heard_from(
                result,
                utterance_id=utterance_id,
                start=self.offset + start,
                end=self.offset + start + voiced,
                final=False,
                arrived=arrived,
            )
            if heard.text:
                self.on_heard(heard)

        if self.recognizer.submit_if_idle(job) is not None:
            self._partial_at = voiced

    def wait(self, timeout: float | None = None) -> None:
        """Block until this track's queued final transcriptions are done (tests, end of stream)."""
        for future in list(self.pending):
            future.result(timeout=timeout)


def heard_as_json(heard: Heard) -> dict[str, Any]:
    return {
        "utteranceId": heard.utterance_id,
        "start": heard.start,
        "end": heard.end,
        "text": heard.text,
        "confidence": heard.confidence,
        "final": heard.final,
    }
