"""Audio decoding for the recognizer: any container users send -> 16 kHz float32 PCM, per channel if asked.

PyAV (FFmpeg's libraries, shipped with faster-whisper's `av` wheel) reads m4a/AAC, mp3, wav, ogg/opus, mp4 with
video (the video stream is ignored), 8 kHz phone audio and stereo. Whisper wants 16 kHz mono float32 in [-1, 1].

A file is decoded as a stream of blocks (`audio_blocks`), never whole: a few kilobytes of FLAC can hold hours of
silence, and hours of 16 kHz float32 are gigabytes. Every reader stops at `max_seconds` (MAX_AUDIO_SECONDS) with
AudioTooLong, as soon as the container announces more or as soon as that much has been decoded, whichever comes
first, so a container that lies about its length is stopped too. `audio_measure` is one such pass that keeps only
running sums (duration, per-channel energy); `audio_decode` keeps everything and is for short clips only.
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
# Decoded audio is handed on in blocks of at most this length (1.9 MB per channel of float32).
BLOCK_SECONDS = 30.0

Samples = npt.NDArray[np.float32]
AudioSourceArg = str | Path | IO[bytes]


class AudioDecodeError(Exception):
    """The input has no decodable audio stream (not media, corrupt, or video without sound)."""


class AudioTooLong(AudioDecodeError):
    """The audio lasts longer than the server transcribes (MAX_AUDIO_SECONDS)."""

    code = "audio_too_long"

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        super().__init__(
            f"The audio is longer than {max_seconds:g} seconds, the most this server transcribes (MAX_AUDIO_SECONDS)."
        )


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


@dataclass(frozen=True)
class AudioFacts:
    """What one streaming pass over a file learned, without keeping its samples."""

    duration: float
    channels: int  # how many channels `audio_blocks` yields with the same split_channels: 1 or 2
    distinct_channels: bool  # two channels with different content (a speaker per side)
    source_channels: int
    source_sample_rate: int


class _ChannelStats:
    """Running sums for channels_are_distinct: mean square of each channel and of their difference."""

    def __init__(self) -> None:
        self.count = 0
        self.left = self.right = self.difference = 0.0

    def add(self, block: npt.NDArray[np.float32]) -> None:
        if block.shape[0] != 2:
            return
        left, right = block[0].astype(np.float64), block[1].astype(np.float64)
        self.count += block.shape[1]
        self.left += float(np.sum(left**2))
        self.right += float(np.sum(right**2))
        self.difference += float(np.sum((left - right) ** 2))

    def distinct(self, threshold: float) -> bool:
        if self.count == 0:
            return False
        energy = (self.left + self.right) / 2 / self.count
        if energy < 1e-8:
            return False
        return self.difference / self.count / energy > threshold


def _rewind(source: AudioSourceArg) -> None:
    """A file object read by a previous pass is read again from its start."""
    if not isinstance(source, (str, Path)) and source.seekable():
        source.seek(0)


def _open(source: AudioSourceArg) -> av.container.InputContainer:
    _rewind(source)
    try:
        return av.open(source if not isinstance(source, Path) else str(source), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioDecodeError(f"Not a readable media file: {exc}") from exc


def _audio_stream(container: av.container.InputContainer) -> AudioStream:
    if not container.streams.audio:
        raise AudioDecodeError("The file has no audio stream.")
    return container.streams.audio[0]


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


def audio_stream_info(source: AudioSourceArg) -> tuple[int, int]:
    """(channels, sample rate) of the file's first audio stream. Raises AudioDecodeError."""
    with _open(source) as container:
        stream = _audio_stream(container)
        return stream.codec_context.layout.nb_channels or 1, stream.codec_context.sample_rate or SAMPLE_RATE


def audio_blocks(
    source: AudioSourceArg,
    *,
    split_channels: bool = False,
    max_seconds: float | None = None,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[npt.NDArray[np.float32]]:
    """Decode `source` (a path or a binary file object) to 16 kHz float32 blocks of shape (channels, samples),
    each at most `block_seconds` long: memory stays bounded whatever the file's length.

    With `split_channels`, a stereo input gives two channels (left, right) — a speaker per channel on most
    call recorders; otherwise everything is mixed down to one. More than two channels are always mixed.
    Raises AudioDecodeError when there is no audio to decode, AudioTooLong past `max_seconds`.
    """
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    with _open(source) as container:
        stream = _audio_stream(container)
        if max_seconds is not None and container.duration and container.duration / 1_000_000 > max_seconds:
            raise AudioTooLong(max_seconds)  # the container says so: refuse before decoding anything
        source_channels = stream.codec_context.layout.nb_channels or 1
        layout = "stereo" if split_channels and source_channels == 2 else "mono"
        block_samples = max(1, int(block_seconds * SAMPLE_RATE))
        pending: list[Samples] = []
        pending_samples = 0
        decoded = 0
        try:
            for chunk in _frames(container, stream, layout):
                decoded += chunk.shape[1]
                if limit is not None and decoded > limit:
                    raise AudioTooLong(float(max_seconds or 0))
                pending.append(chunk)
                pending_samples += chunk.shape[1]
                if pending_samples >= block_samples:
                    yield np.concatenate(pending, axis=1)
                    pending, pending_samples = [], 0
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(f"The audio could not be decoded: {exc}") from exc
        if pending:
            yield np.concatenate(pending, axis=1)


def audio_measure(
    source: AudioSourceArg,
    *,
    split_channels: bool = False,
    max_seconds: float | None = None,
    threshold: float = 0.25,
) -> AudioFacts:
    """One streaming pass: the audio's duration and whether its two channels differ (see channels_are_distinct).

    Raises AudioDecodeError, AudioTooLong (as audio_blocks).
    """
    source_channels, source_rate = audio_stream_info(source)
    stats = _ChannelStats()
    samples = 0
    width = 1
    for block in audio_blocks(source, split_channels=split_channels, max_seconds=max_seconds):
        width = block.shape[0]
        samples += block.shape[1]
        stats.add(block)
    if split_channels and source_channels == 2:
        width = 2
    return AudioFacts(
        duration=samples / SAMPLE_RATE,
        channels=width,
        distinct_channels=stats.distinct(threshold),
        source_channels=source_channels,
        source_sample_rate=source_rate,
    )


def audio_channel(
    source: AudioSourceArg, *, channel: int | None, max_seconds: float | None = None
) -> Iterator[Samples]:
    """The 1-D blocks of one voice: `channel` 0 or 1 of a stereo file, or None for everything mixed to mono."""
    if channel is None:
        for block in audio_blocks(source, max_seconds=max_seconds):
            yield block[0]
        return
    for block in audio_blocks(source, split_channels=True, max_seconds=max_seconds):
        yield np.ascontiguousarray(block[channel])


def audio_decode(
    source: AudioSourceArg, *, split_channels: bool = False, max_seconds: float | None = None
) -> DecodedAudio:
    """Decode all of `source` into memory: for short clips (tests, benches, the live recognizer's checks).

    Jobs stream with audio_blocks instead. Raises AudioDecodeError, AudioTooLong past `max_seconds`.
    """
    source_channels, source_rate = audio_stream_info(source)
    width = 2 if split_channels and source_channels == 2 else 1
    blocks = list(audio_blocks(source, split_channels=split_channels, max_seconds=max_seconds))
    planes = np.concatenate(blocks, axis=1) if blocks else np.zeros((width, 0), dtype=np.float32)
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
    stats = _ChannelStats()
    stats.add(np.stack(audio.channels))
    return stats.distinct(threshold)


def pcm16_to_float(data: bytes) -> Samples:
    """Little-endian signed 16-bit PCM (what LiveKit track egress streams) -> float32 in [-1, 1]."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32, copy=False)
