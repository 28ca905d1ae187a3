"""Object storage for media: keys, download URLs, probing. Everything goes through `default_storage`.

`default_storage` is a local folder (FileSystemStorage under MEDIA_ROOT) unless S3_BUCKET is
set, then S3/MinIO. LiveKit's egress writes into the same place: the gateway hands it
ScaiWave's S3 settings, and for local storage LiveKit (or the emulator) writes under
MEDIA_ROOT, so an egress filepath *is* a storage key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from storages.backends.s3 import S3Storage

logger = logging.getLogger("scaiwave.recordings")

RECORDINGS_PREFIX = "recordings"
_UNSAFE_KEY_PART = re.compile(r"[^A-Za-z0-9._-]+")
CHUNK_SIZE = 1024 * 1024


def is_local() -> bool:
    """True when objects are files on this machine (downloads are served by ScaiWave)."""
    return isinstance(default_storage, FileSystemStorage)


def key_part(value: str) -> str:
    """A room name or call id made safe as one path segment of an object key."""
    cleaned = _UNSAFE_KEY_PART.sub("_", value).strip("._") or "_"
    return cleaned[:200]


def recording_key(*, owner: str, extension: str, at: datetime | None = None) -> str:
    """`recordings/<call_id or room name>/<timestamp><extension>`; the timestamp is UTC with milliseconds."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{RECORDINGS_PREFIX}/{key_part(owner)}/{stamp}{extension}"


# --- Signed local download URLs ---------------------------------------------------------------


def media_signature(entry_id: str, expires: int) -> str:
    message = f"media:{entry_id}:{expires}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def media_signature_valid(entry_id: str, expires: int, signature: str) -> bool:
    # compare_digest refuses str with non-ASCII characters (TypeError): compare bytes instead.
    expected = media_signature(entry_id, expires).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def download_url(*, entry_id: str, key: str, ttl: int | None = None) -> tuple[str, datetime]:
    """A time-limited URL for one object: presigned by S3, or signed by ScaiWave for local storage."""
    lifetime = ttl or settings.MEDIA_URL_TTL
    expires = int(time.time()) + lifetime
    expires_at = datetime.fromtimestamp(expires, UTC)
    if is_local():
        query = urlencode({"expires": expires, "sig": media_signature(entry_id, expires)})
        return f"{settings.PUBLIC_BASE_URL}/v1/media/{entry_id}?{query}", expires_at
    return _presigned_url(key, lifetime, storage=_public_storage()), expires_at


def _presigned_url(key: str, lifetime: int, *, storage: Storage = default_storage) -> str:
    url: str = storage.url(key, expire=lifetime)  # type: ignore[call-arg]  # S3Storage's signature
    return url


def _public_storage() -> Storage:
    """The storage whose presigned URLs a browser can open: the same bucket through S3_PUBLIC_ENDPOINT_URL when set.

    Workers keep the internal endpoint (S3_ENDPOINT_URL, e.g. http://minio:9000) for their own reads.
    """
    if not settings.S3_PUBLIC_ENDPOINT_URL:
        return default_storage
    options: dict[str, Any] = settings.STORAGES["default"].get("OPTIONS", {})  # type: ignore[attr-defined]
    return _s3_storage_at(settings.S3_PUBLIC_ENDPOINT_URL, tuple(sorted(options.items())))


@lru_cache(maxsize=4)
def _s3_storage_at(endpoint_url: str, options: tuple[tuple[str, Any], ...]) -> S3Storage:
    # Presigning is computed here, not asked of the server: the signature covers the public host, which is the Host
    # the browser sends and the TLS front passes on to the object store.
    return S3Storage(**{**dict(options), "endpoint_url": endpoint_url})


# --- Reading objects --------------------------------------------------------------------------


def object_size(key: str) -> int | None:
    """The object's size, or None when it does not exist."""
    try:
        if not default_storage.exists(key):
            return None
        return int(default_storage.size(key))
    except (OSError, ValueError):
        return None
    except Exception:  # botocore ClientError and friends: treat as absent, the caller reports it
        logger.warning("storage size lookup failed", extra={"key": key}, exc_info=True)
        return None


def object_sha256(key: str) -> str:
    digest = hashlib.sha256()
    with default_storage.open(key, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def object_iter(key: str, *, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The object's bytes from `start`, `length` of them (all when None), in chunks."""
    handle = default_storage.open(key, "rb")
    try:
        if start:
            handle.seek(start)
        remaining = length
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def probe_duration(key: str) -> float | None:
    """ffprobe's idea of the container duration in seconds; None if ffprobe cannot read it."""
    source = default_storage.path(key) if is_local() else _presigned_url(key, 300)
    try:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", source],
            capture_output=True,
            timeout=settings.RECORDING_FFPROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        logger.warning("ffprobe did not run", extra={"key": key}, exc_info=True)
        return None
    if result.returncode != 0:
        logger.warning("ffprobe failed", extra={"key": key, "stderr": result.stderr.decode(errors="replace")[:500]})
        return None
    try:
        return float(json.loads(result.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        return None


def list_keys(prefix: str) -> Iterator[str]:
    """Every object key under `prefix` (recursively)."""
    try:
        folders, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for folder in folders:
        yield from list_keys(f"{prefix}/{folder}")


def modified_at(key: str) -> datetime | None:
    try:
        return default_storage.get_modified_time(key)
    except (OSError, NotImplementedError):
        return None


class MeteredReader:
    """Wraps a stream: counts bytes and hashes them as storage reads, and stops past `max_bytes`.

    Storage backends read with `.read(n)` (S3's upload_fileobj) or `.chunks()` (the file
    system), so the file is never held in memory.
    """

    def __init__(self, stream: IO[bytes], *, max_bytes: int | None, content_type: str = "") -> None:
        self._stream = stream
        self.content_type = content_type  # S3Storage sends it as the object's Content-Type
        self.max_bytes = max_bytes
        self.size = 0
        self.too_large = False
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size if size and size > 0 else CHUNK_SIZE)
        if not chunk:
            return b""
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.too_large = True
            raise FileTooLarge(self.max_bytes)
        self._digest.update(chunk)
        return chunk

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        while chunk := self.read(chunk_size or CHUNK_SIZE):
            yield chunk

    def multiple_chunks(self, chunk_size: int | None = None) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def seekable(self) -> bool:
        # Storages then read the stream once, from where it is.
        return False

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:  # the caller owns the underlying stream
        pass


class FileTooLarge(Exception):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the file is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes
