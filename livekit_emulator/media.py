"""Real media with Debian's ffmpeg: decoding published audio to PCM and rendering egress files.

Every published audio track is kept as raw PCM (s16le, 48 kHz, mono) in the emulator's work folder. An egress file is
rendered once, when the egress ends, by placing each track's PCM at its offset on a silent timeline of the recorded
length and encoding the mix (AAC in MP4 with a generated low-rate picture, Opus in OGG, or MP3).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 48000
BYTES_PER_SAMPLE = 2
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * BYTES_PER_SAMPLE * FRAME_MS // 1000

VIDEO_SIZE = "320x180"
VIDEO_RATE = 10
VIDEO_COLOR = "0x1f2a44"


class MediaError(RuntimeError):
    """ffmpeg failed or is missing; the message carries ffmpeg's stderr tail."""


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise MediaError("ffmpeg is not installed (apt-get install ffmpeg)")
    return path


async def _run(args: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        ffmpeg_path(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise MediaError(f"ffmpeg exited with {process.returncode}: {stderr.decode(errors='replace')[-400:]}")


def pcm_seconds(path: Path) -> float:
    return path.stat().st_size / (SAMPLE_RATE * BYTES_PER_SAMPLE)


async def decode_to_pcm(source: Path, destination: Path) -> float:
    """Decode any audio file ffmpeg reads (WAV, OGG, MP3, ...) to 48 kHz mono s16le. Returns its length in s."""
    if not source.is_file():
        raise MediaError(f"no such file: {source}")
    await _run(["-i", str(source), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", str(destination)])
    return pcm_seconds(destination)


async def generate_tone(frequency: float, seconds: float, destination: Path) -> float:
    """Write a sine tone as 48 kHz mono s16le PCM. Returns its length in s."""
    source = f"sine=frequency={frequency}:sample_rate={SAMPLE_RATE}:duration={seconds}"
    await _run(["-f", "lavfi", "-i", source, "-ac", "1", "-f", "s16le", str(destination)])
    return pcm_seconds(destination)


@dataclass
class Placement:
    """A slice of one track's PCM placed on the output timeline (all values in seconds of media time)."""

    pcm: Path
    source_start: float
    at: float
    length: float
    muted: list[tuple[float, float]] = field(default_factory=list)


def _samples(seconds: float) -> int:
    return max(0, round(seconds * SAMPLE_RATE))


async def render(
    placements: list[Placement],
    duration: float,
    output: Path,
    *,
    container: str,
    video: bool,
    audio: bool = True,
) -> None:
    """Render ``duration`` seconds to ``output``. ``container`` is "mp4", "ogg" or "mp3"."""
    duration = max(duration, 0.05)
    args: list[str] = []
    filters: list[str] = []
    mix_inputs: list[str] = []
    input_index = 0
    audio_label = ""
    if audio:
        args += ["-f", "lavfi", "-t", f"{duration:.3f}", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=mono"]
        mix_inputs.append(f"[{input_index}:a]")
        input_index += 1
        for placement in placements:
            if placement.length <= 0 or placement.at >= duration:
                continue
            args += ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", str(placement.pcm)]
            start = _samples(placement.source_start)
            end = start + _samples(min(placement.length, duration - placement.at))
            chain = (
                f"[{input_index}:a]atrim=start_sample={start}:end_sample={end},asetpts=N/SR/TB,"
                f"adelay=delays={_samples(placement.at)}S:all=1"
            )
            for mute_start, mute_end in placement.muted:
                chain += f",volume=volume=0:enable='between(t,{mute_start:.3f},{mute_end:.3f})'"
            label = f"[t{input_index}]"
            filters.append(chain + label)
            mix_inputs.append(label)
            input_index += 1
        audio_label = "[aout]"
        filters.append("".join(mix_inputs) + f"amix=inputs={len(mix_inputs)}:duration=first:normalize=0" + audio_label)
    video_index = -1
    if video:
        args += ["-f", "lavfi", "-t", f"{duration:.3f}", "-i", f"color=c={VIDEO_COLOR}:s={VIDEO_SIZE}:r={VIDEO_RATE}"]
        video_index = input_index
    if filters:
        args += ["-filter_complex", ";".join(filters)]
    if audio:
        args += ["-map", audio_label]
        if container == "ogg":
            args += ["-c:a", "libopus", "-b:a", "48k"]
        elif container == "mp3":
            args += ["-c:a", "libmp3lame", "-b:a", "64k"]
        else:
            args += ["-c:a", "aac", "-b:a", "64k"]
    if video:
        args += [
            "-map",
            f"{video_index}:v",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "stillimage",
            "-pix_fmt",
            "yuv420p",
        ]
    if container == "mp4":
        args += ["-movflags", "+faststart"]
    args += ["-t", f"{duration:.3f}", "-f", container, str(output)]
    await _run(args)
