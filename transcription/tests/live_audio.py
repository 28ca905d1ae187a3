"""Speech as LiveKit's track egress streams it (s16le, 48 kHz, mono), for the live transcription tests and bench."""

from __future__ import annotations

import subprocess
from pathlib import Path

FRAME_BYTES = 48_000 * 2 // 50  # 20 ms of 16-bit mono at 48 kHz


def pcm48k(path: Path) -> bytes:
    """Any audio file -> raw s16le 48 kHz mono bytes (ffmpeg)."""
    result = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return result.stdout


def silence48k(seconds: float) -> bytes:
    return b"\0\0" * int(48_000 * seconds)


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[at : at + FRAME_BYTES] for at in range(0, len(pcm), FRAME_BYTES)]
