"""Every upload type users send decodes to 16 kHz audio whose words come out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transcription.audio import AudioDecodeError, audio_decode, channels_are_distinct
from transcription.tests.conftest import espeak, librivox_clip, normalise, run

# name -> ffmpeg output arguments (input: a 3 s LibriVox clip)
FORMATS = {
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "48k"],
    "wav": ["-c:a", "pcm_s16le"],
    "aac": ["-c:a", "aac", "-f", "adts"],
    "ogg": ["-c:a", "libopus", "-b:a", "24k"],
    "phone.wav": ["-ar", "8000", "-c:a", "pcm_mulaw"],
    "stereo.wav": ["-ac", "2", "-c:a", "pcm_s16le"],
}


@pytest.fixture(scope="session")
def clip() -> Path:
    return librivox_clip("0880")[0]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_audio_format_is_decoded_and_transcribed(fmt: str, clip: Path, speech_dir: Path, stt_engine) -> None:
    target = speech_dir / f"clip.{fmt}"
    run("ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), *FORMATS[fmt], str(target))
    audio = audio_decode(target)
    assert 2.8 <= audio.duration <= 3.3
    result = stt_engine.transcribe_samples(audio.mono())
    assert "young man" in normalise(result.text), (fmt, result.text)


def test_an_mp4_with_video_is_transcribed_from_its_audio(clip: Path, speech_dir: Path, stt_engine) -> None:
    target = speech_dir / "clip.mp4"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5",
        "-i", str(clip), "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(target),
    )  # fmt: skip
    (result,) = stt_engine.transcribe_file(target)
    assert "young man" in normalise(result.text)


def test_stereo_with_a_speaker_per_channel_is_split(speech_dir: Path, stt_engine) -> None:
    left = espeak(speech_dir / "left.wav", "Good morning, this is the support desk.")
    right = espeak(speech_dir / "right.wav", "Hello, my printer is broken.")
    target = speech_dir / "call.wav"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-i", str(left), "-i", str(right), "-filter_complex",
        "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]", "-ac", "2", str(target),
    )  # fmt: skip
    audio = audio_decode(target, split_channels=True)
    assert len(audio.channels) == 2 and audio.source_channels == 2
    assert channels_are_distinct(audio)
    first, second = stt_engine.transcribe_file(target, split_channels=True)
    assert (first.channel, second.channel) == (0, 1)
    assert "good morning" in normalise(first.text) and "printer" not in normalise(first.text)
    assert "printer" in normalise(second.text) and "support" not in normalise(second.text)


def test_stereo_from_one_microphone_is_not_treated_as_two_speakers(clip: Path, speech_dir: Path) -> None:
    target = speech_dir / "dual-mono.wav"
    run("ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), "-ac", "2", str(target))
    audio = audio_decode(target, split_channels=True)
    assert len(audio.channels) == 2
    assert not channels_are_distinct(audio)
    assert audio_decode(target).channels[0].shape == audio.mono().shape


def test_a_video_without_sound_is_refused(speech_dir: Path) -> None:
    target = speech_dir / "silent-video.mp4"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1",
        "-c:v", "libx264", "-preset", "ultrafast", str(target),
    )  # fmt: skip
    with pytest.raises(AudioDecodeError, match="no audio"):
        audio_decode(target)


def test_bytes_that_are_not_media_are_refused(speech_dir: Path) -> None:
    target = speech_dir / "notes.m4a"
    target.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioDecodeError):
        audio_decode(target)


def test_decoded_audio_is_16khz_float_in_range(clip: Path) -> None:
    audio = audio_decode(clip)
    samples = audio.mono()
    assert samples.dtype == np.float32
    assert float(np.max(np.abs(samples))) <= 1.0
    assert audio.source_sample_rate == 16000
