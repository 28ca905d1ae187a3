"""Audio decoding for the recognizer: any container users send -> 16 kHz float32 PCM, per channel if asked.

PyAV (FFmpeg's libraries, shipped with faster-whisper's `av` wheel) reads m4a/AAC, mp3, wav, ogg/opus, mp4 with
video (the video stream is ignored), 8 kHz phone audio and stereo. Whisper wants 16 kHz mono float32 in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

SAMPLE_RATE = 16_000

Samples = npt.NDArray[np.float32]


class AudioDecodeError(Exception):
    """The input has no decodable audio stream (not media, corrupt, or video without sound)."""


@dataclass(frozen=True)
class DecodedAudio:
    """One or more 16 kHz float32 channels of equal length."""

    channels: list[Samples]
    source_channels: int
    source_sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0

    def mono(self) -> Samples:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)


def _frames(container: av.container.InputContainer, stream: AudioStream, layout: str) -> Iterator[Samples]:
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
    for packet in container.demux(stream):
        for frame in packet.decode():
            assert isinstance(frame, av.AudioFrame)
            frame.pts = None  # resampler timestamps are irrelevant here; avoids pts gap warnings
            for out in resampler.resample(frame):
                yield out.to_ndarray().astype(np.float32, copy=False)
    for out in resampler.resample(None):
        yield out.to_ndarray().astype(np.float32, copy=False)


def audio_decode(source: str | Path | IO[bytes], *, split_channels: bool = False) -> DecodedAudio:
    """Decode `source` (a path or a binary file object) to 16 kHz float32.

    With `split_channels`, a stereo input gives two channels (left, right) — a speaker per channel on most
    call recorders; otherwise everything is mixed down to one. More than two channels are always mixed.
    Raises AudioDecodeError when there is no audio to decode.
    """
    try:
        container = av.open(source if not isinstance(source, Path) else str(source), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioDecodeError(f"Not a readable media file: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise AudioDecodeError("The file has no audio stream.")
        stream = container.streams.audio[0]
        source_channels = stream.codec_context.layout.nb_channels or 1
        source_rate = stream.codec_context.sample_rate or SAMPLE_RATE
        keep_stereo = split_channels and source_channels == 2
        try:
            chunks = list(_frames(container, stream, "stereo" if keep_stereo else "mono"))
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(f"The audio could not be decoded: {exc}") from exc
    width = 2 if keep_stereo else 1
    if chunks:
        planes = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    else:
        planes = np.zeros((width, 0), dtype=np.float32)
    return DecodedAudio(
        channels=[np.ascontiguousarray(planes[i]) for i in range(width)],
        source_channels=source_channels,
        source_sample_rate=source_rate,
    )


def channels_are_distinct(audio: DecodedAudio, *, threshold: float = 0.25) -> bool:
    """Whether a two-channel recording carries different content per channel (a speaker per side).

    A stereo file made from one microphone has near-identical channels; a call recorder puts each party on
    its own side. Compares the difference signal's energy with the channels' energy.
    """
    if len(audio.channels) != 2:
        return False
    left, right = audio.channels
    energy = float(np.mean(left**2) + np.mean(right**2)) / 2
    if energy < 1e-8:
        return False
    difference = float(np.mean((left - right) ** 2))
    return difference / energy > threshold


def pcm16_to_float(data: bytes) -> Samples:
    """Little-endian signed 16-bit PCM (what LiveKit track egress streams) -> float32 in [-1, 1]."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32, copy=False)
