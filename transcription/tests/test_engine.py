"""The engine on human (LibriVox) and synthetic (espeak-ng) speech, files and PCM chunks."""

from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np
import pytest

from transcription.audio import SAMPLE_RATE, audio_decode
from transcription.engine import UnsupportedLanguage, engine_get, whisper_language_for
from transcription.tests.conftest import TINY, espeak, librivox_clip, normalise


def test_human_speech_is_transcribed_close_to_its_reference_with_word_times(stt_engine) -> None:
    path, reference = librivox_clip("0870")
    (result,) = stt_engine.transcribe_file(path, language="en")
    error = jiwer.wer(normalise(reference), normalise(result.text))
    assert error <= 0.25, (result.text, error)
    assert result.language == "en"
    assert 7.0 <= result.duration <= 7.2
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 15
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= result.duration + 0.5 for w in words)
    assert all(0.0 < s.confidence <= 1.0 for s in result.segments)


def test_synthetic_speech_is_transcribed(stt_engine, speech_dir: Path) -> None:
    path = espeak(speech_dir / "espeak-weather.wav", "The weather is sunny and warm today.")
    (result,) = stt_engine.transcribe_file(path)
    text = normalise(result.text)
    assert "weather" in text and "sunny" in text, text


def test_a_pcm_chunk_of_a_stream_is_transcribed_on_the_stream_clock(stt_engine) -> None:
    """The primitive a live recognizer builds on: 16-bit PCM at the track's rate, placed at an offset."""
    path, _ = librivox_clip("0880")
    samples = audio_decode(path).mono()
    eight_k = samples[:: SAMPLE_RATE // 8000]  # 8 kHz phone-rate PCM
    pcm16 = (np.clip(eight_k, -1, 1) * 32767).astype("<i2").tobytes()
    result = stt_engine.transcribe_pcm(pcm16, sample_rate=8000, offset=100.0)
    assert "young man" in normalise(result.text)
    assert all(s.start >= 100.0 for s in result.segments)


def test_silence_gives_no_segments(stt_engine) -> None:
    result = stt_engine.transcribe_samples(np.zeros(SAMPLE_RATE * 2, dtype=np.float32))
    assert result.segments == []


def test_the_model_is_loaded_once_per_process(stt_engine) -> None:
    assert engine_get(TINY) is stt_engine


@pytest.mark.parametrize(
    ("tag", "code"),
    [("en-US", "en"), ("pt-BR", "pt"), ("zh-Hant-TW", "zh"), ("iw", "he"), ("de", "de"), ("auto", None), ("", None)],
)
def test_bcp47_tags_map_to_whisper_codes(tag: str, code: str | None) -> None:
    assert whisper_language_for(tag) == code


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(UnsupportedLanguage):
        whisper_language_for("xx-YY")


def test_the_multilingual_base_model_transcribes_the_language_asked_for(speech_dir: Path) -> None:
    path = espeak(speech_dir / "espeak-de.wav", "Guten Morgen. Wie geht es dir heute?", voice="de")
    engine = engine_get("base")
    assert engine.multilingual
    (result,) = engine.transcribe_file(path, language=whisper_language_for("de-DE"))
    assert result.language == "de"
    text = normalise(result.text)
    assert "guten morgen" in text, text


def test_long_audio_is_cut_at_pauses_and_transcribed_piece_by_piece(stt_engine, settings) -> None:
    from transcription.engine import _CUT_SEARCH_SECONDS, _quiet_cut

    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    sentences = [librivox_clip(n) for n in ("0870", "0880", "0890", "0920", "0930")]
    parts = [audio_decode(path).mono() for path, _ in sentences]
    joined = np.concatenate([piece for part in parts + parts for piece in (part, gap)])  # ~59 s
    settings.STT_CHUNK_SECONDS = 30.0

    cut = _quiet_cut(joined, 30 * SAMPLE_RATE, int(_CUT_SEARCH_SECONDS * SAMPLE_RATE))
    assert abs(cut - 30 * SAMPLE_RATE) <= _CUT_SEARCH_SECONDS * SAMPLE_RATE
    assert float(np.abs(joined[cut - 800 : cut + 800]).max()) < 0.01  # in a pause, not in a word

    result = stt_engine.transcribe_samples(joined, language="en")
    text = normalise(result.text)
    assert text.count("young man") == 2 and text.count("amiable himself") == 2, text
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and starts[-1] > 45.0
