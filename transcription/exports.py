"""Transcript exports: plain text (document 001's `format=text`), WebVTT and SubRip (ours).

Each takes segments in order and returns the whole document as a string; docs/transcription.md shows samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class SegmentLike(Protocol):
    start: float
    end: float
    text: str
    speaker_name: str
    speaker_label: str


EXPORT_CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
}


def _speaker(segment: SegmentLike) -> str:
    return segment.speaker_name or segment.speaker_label


def _clock(seconds: float, *, millis_separator: str | None) -> str:
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    base = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return base if millis_separator is None else f"{base}{millis_separator}{millis:03d}"


def transcript_as_text(segments: Iterable[SegmentLike]) -> str:
    """One line per segment: `[HH:MM:SS] Speaker: text`."""
    lines = []
    for segment in segments:
        speaker = _speaker(segment)
        prefix = f"[{_clock(segment.start, millis_separator=None)}] "
        lines.append(f"{prefix}{speaker}: {segment.text}" if speaker else f"{prefix}{segment.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def _cue_text(segment: SegmentLike, *, vtt: bool) -> str:
    speaker = _speaker(segment)
    text = segment.text.replace("\n", " ")
    if vtt:
        # WebVTT's voice span; '<', '>' and '&' would start markup, so escape them.
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        name = speaker.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<v {name}>{text}" if speaker else text
    return f"{speaker}: {text}" if speaker else text


def transcript_as_vtt(segments: Iterable[SegmentLike]) -> str:
    cues = ["WEBVTT", ""]
    for number, segment in enumerate(segments, start=1):
        start = _clock(segment.start, millis_separator=".")
        end = _clock(max(segment.end, segment.start), millis_separator=".")
        cues += [str(number), f"{start} --> {end}", _cue_text(segment, vtt=True), ""]
    return "\n".join(cues)


def transcript_as_srt(segments: Iterable[SegmentLike]) -> str:
    cues = []
    for number, segment in enumerate(segments, start=1):
        start = _clock(segment.start, millis_separator=",")
        end = _clock(max(segment.end, segment.start), millis_separator=",")
        cues += [str(number), f"{start} --> {end}", _cue_text(segment, vtt=False), ""]
    return "\n".join(cues)


EXPORTERS = {"text": transcript_as_text, "vtt": transcript_as_vtt, "srt": transcript_as_srt}
