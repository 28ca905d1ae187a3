"""Streaming an uploaded recording into storage: a Django upload handler, content sniffing, and the audio probe.

The multipart parser hands the `file` part to `StorageUploadHandler` in 64 KiB chunks; each chunk is hashed,
counted and written straight to `default_storage` (a local file or an S3 multipart upload), so the upload is
never held in memory. The first chunk is sniffed for an audio container's magic bytes before anything is written;
after the last chunk, the stored object must open and decode as audio (PyAV), else it is deleted (415).
Past MAX_FILE_SIZE the partial object is deleted and the request ends with 413. Other parts (`metadata`, `title`)
are small and kept in memory up to FIELD_LIMIT bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import uuid
from dataclasses import dataclass
from typing import IO, Any

import av
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from recordings import storage
from scaiwave.api.errors import ProblemError

logger = logging.getLogger("scaiwave.analysis")

UPLOAD_PREFIX = f"{storage.RECORDINGS_PREFIX}/uploads"  # under recordings/: the orphan sweeper covers it
FIELD_LIMIT = 64 * 1024
CHUNK_SIZE = 64 * 1024
# Room for the multipart framing and the small parts around the file when checking Content-Length up front.
MULTIPART_OVERHEAD = 64 * 1024

# (content type, extension) per container, recognised from the first bytes, never from the name or part type.
AUDIO_FORMATS = {
    "wav": ("audio/wav", ".wav"),
    "mp3": ("audio/mpeg", ".mp3"),
    "aac": ("audio/aac", ".aac"),
    "ogg": ("audio/ogg", ".ogg"),
    "mp4": ("audio/mp4", ".m4a"),
    "flac": ("audio/flac", ".flac"),
    "amr": ("audio/amr", ".amr"),
    "webm": ("audio/webm", ".webm"),
}


def sniff_audio_format(head: bytes) -> str | None:
    """The container a file's first bytes announce (one of AUDIO_FORMATS), or None."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3":
        return "mp3"  # an ID3 tag fronts MP3 (and sometimes AAC): the decode probe settles it
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "aac"  # ADTS sync word, layer 0
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:
            return "mp3"  # MPEG audio frame sync with a layer set
    return None


@dataclass
class StoredUpload:
    """What the handler stored for the `file` part."""

    key: str
    size: int
    sha256: str
    audio_format: str
    file_name: str

    @property
    def content_type(self) -> str:
        return AUDIO_FORMATS[self.audio_format][0]

    def close(self) -> None:
        """Django's multipart parser closes the files it collected when a later part fails; the writer is
        already closed by then (the view's discard() deletes the object)."""


class StorageUploadHandler(FileUploadHandler):
    """Streams the `file` part into storage under `recordings/uploads/<tenant>/<uuid><ext>`.

    Raises ProblemError 415 unsupported_media_type (not an audio container), 413 payload_too_large (past
    `max_bytes`), 400 validation_failed (a second `file` part, an oversized small part), 503 storage_unavailable.
    The view calls `discard()` when the request fails after the object was written.
    """

    chunk_size = CHUNK_SIZE

    def __init__(self, request: HttpRequest, *, tenant_key: str, max_bytes: int) -> None:
        super().__init__(request)
        self.tenant_key = tenant_key
        self.max_bytes = max_bytes
        self.stored: StoredUpload | None = None
        self._field = ""
        self._writer: IO[bytes] | None = None
        self._key = ""
        self._size = 0
        self._digest = hashlib.sha256()
        self._format: str | None = None
        self._small: io.BytesIO | None = None

    # --- FileUploadHandler ------------------------------------------------------------------------

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self._field = field_name
        if field_name == "file":
            if self._key or self.stored is not None:
                raise ProblemError(400, "validation_failed", "Send one file.", errors={"file": ["Only one file."]})
            return
        # A small part sent with a filename (e.g. metadata as an application/json file part).
        self._small = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self._field != "file":
            assert self._small is not None
            if self._small.tell() + len(raw_data) > FIELD_LIMIT:
                raise ProblemError(
                    400, "validation_failed", f"{self._field} is too large.", errors={self._field: ["Too large."]}
                )
            self._small.write(raw_data)
            return None
        if self._format is None:
            self._format = sniff_audio_format(raw_data[:64])
            if self._format is None:
                raise ProblemError(
                    415,
                    "unsupported_media_type",
                    "The file is not a recognised audio format (wav, mp3, aac, ogg/opus, m4a, flac, amr, webm).",
                )
            self._open_writer()
        self._size += len(raw_data)
        if self._size > self.max_bytes:
            self.discard()
            raise ProblemError(413, "payload_too_large", f"The file is larger than {self.max_bytes} bytes.")
        self._digest.update(raw_data)
        assert self._writer is not None
        try:
            self._writer.write(raw_data)
        except Exception as exc:
            self.discard()
            raise _storage_unavailable(exc) from None
        return None

    def file_complete(self, file_size: int) -> Any:
        if self._field != "file":
            assert self._small is not None
            self._small.seek(0)
            small, self._small = self._small, None
            small.name = self.file_name
            return small
        if self._writer is None:
            raise ProblemError(400, "validation_failed", "The file is empty.", errors={"file": ["Empty file."]})
        try:
            self._writer.close()
        except Exception as exc:
            self.discard()
            raise _storage_unavailable(exc) from None
        self._writer = None
        assert self._format is not None
        self.stored = StoredUpload(
            key=self._key,
            size=self._size,
            sha256=self._digest.hexdigest(),
            audio_format=self._format,
            file_name=self.file_name or "",
        )
        return self.stored

    def upload_interrupted(self) -> None:
        self.discard()

    # --- ours -------------------------------------------------------------------------------------

    def _open_writer(self) -> None:
        extension = AUDIO_FORMATS[self._format or "wav"][1]
        self._key = f"{UPLOAD_PREFIX}/{storage.key_part(self.tenant_key)}/{uuid.uuid4().hex}{extension}"
        try:
            if storage.is_local():
                os.makedirs(os.path.dirname(default_storage.path(self._key)), exist_ok=True)
            self._writer = default_storage.open(self._key, "wb")
        except Exception as exc:
            self._key = ""
            raise _storage_unavailable(exc) from None

    def discard(self) -> None:
        """Delete whatever was written (a failed upload leaves nothing; if storage is down, the sweeper will)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                logger.warning("could not close a partial upload", exc_info=True)
            self._writer = None
        key = self._key or (self.stored.key if self.stored else "")
        self._key = ""
        self.stored = None
        if key:
            try:
                default_storage.delete(key)
            except Exception:
                logger.warning("could not delete a partial upload; the sweeper will", extra={"key": key})


def _storage_unavailable(exc: Exception) -> ProblemError:
    logger.warning("storage unavailable during an upload", exc_info=exc)
    return ProblemError(503, "storage_unavailable", "Object storage is unavailable; try again later.")


def probe_audio(key: str) -> float | None:
    """Confirm the stored object decodes as audio; return its duration in seconds when the container says.

    Raises ProblemError 415 unsupported_media_type when it has no decodable audio stream.
    """
    try:
        source: Any = default_storage.path(key) if storage.is_local() else default_storage.open(key, "rb")
    except Exception as exc:
        raise _storage_unavailable(exc) from None
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.audio:
                raise ProblemError(415, "unsupported_media_type", "The file has no audio stream.")
            stream = container.streams.audio[0]
            decoded = 0
            for packet in container.demux(stream):
                for _frame in packet.decode():
                    decoded += 1
                if decoded >= 3:
                    break
            if decoded == 0:
                raise ProblemError(415, "unsupported_media_type", "The file's audio could not be decoded.")
            if container.duration:
                return float(container.duration) / 1_000_000
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return None
    except (av.error.FFmpegError, OSError, ValueError, EOFError):
        raise ProblemError(415, "unsupported_media_type", "The file does not decode as audio.") from None
    finally:
        if not isinstance(source, str):
            source.close()
