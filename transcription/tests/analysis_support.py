"""Helpers of the uploaded-call tests: tiny audio made in the test, uploads, and a finished call without a model."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from transcription.analysis import services
from transcription.models import Transcription, TranscriptSegment, UploadedCall


def tone_wav(seconds: float = 1.0, *, channels: int = 1, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A short 16-bit PCM WAV tone (stereo: a different pitch per channel)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = bytearray()
        for n in range(int(seconds * rate)):
            for channel in range(channels):
                value = math.sin(2 * math.pi * frequency * (channel + 1) * n / rate)
                frames += struct.pack("<h", int(12000 * value))
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def upload(
    client: APIClient,
    content: bytes,
    *,
    name: str = "call.wav",
    metadata: dict[str, Any] | str | None = None,
    title: str | None = None,
    key: str | None = None,
) -> Any:
    upload_file = io.BytesIO(content)
    upload_file.name = name
    body: dict[str, Any] = {"file": upload_file}
    if metadata is not None:
        body["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
    if title is not None:
        body["title"] = title
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/calls/analyze", body, format="multipart", **headers)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def complete_without_model(call_id: str, lines: list[tuple[str, float, float, str]]) -> UploadedCall:
    """Finish a queued call as if the recognizer had heard `lines` [(label, start, end, text)], then analyse it.

    Stands in for the speech model in API tests (the end-to-end test runs the real one)."""
    call = UploadedCall.objects.get(pk=call_id)
    assert call.transcription_id is not None
    TranscriptSegment.objects.bulk_create(
        TranscriptSegment(transcription_id=call.transcription_id, index=i, start=s, end=e, text=t, speaker_label=label)
        for i, (label, s, e, t) in enumerate(lines)
    )
    Transcription.objects.filter(pk=call.transcription_id).update(
        status=Transcription.Status.COMPLETED, progress=100, duration=max(e for _, _, e, _ in lines)
    )
    UploadedCall.objects.filter(pk=call_id).update(status=UploadedCall.Status.TRANSCRIBING)
    services._complete(call_id)
    call.refresh_from_db()
    return call
