"""Per-track ingest tokens: what lets one LiveKit track egress stream into /v1/ingest/audio.

    token = ingest_token_make(transcription_id="tr_…", track_sid="TR_…", identity="alice")
    claims = ingest_token_verify(token)          # IngestClaims, or raises InvalidIngestToken

The token travels in the egress's WebSocket URL (LiveKit's track egress cannot send headers), so it is signed:
HMAC-SHA256 under a key derived from SECRET_KEY over the transcription id, track sid, participant identity and
expiry, compared in constant time. It names exactly one track of one session and expires
(TRANSCRIPTION_LIVE_TOKEN_TTL), so a leaked URL streams nothing into another session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.conf import settings

_PURPOSE = b"scaiwave.transcription.live.ingest.v1"


class InvalidIngestToken(ValueError):
    """Malformed, forged or expired."""


@dataclass(frozen=True)
class IngestClaims:
    transcription_id: str
    track_sid: str
    identity: str
    expires_at: int


def _key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ingest_token_make(*, transcription_id: str, track_sid: str, identity: str, ttl: int | None = None) -> str:
    expires = int(time.time()) + (settings.TRANSCRIPTION_LIVE_TOKEN_TTL if ttl is None else ttl)
    claims = [transcription_id, track_sid, identity, expires]
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def ingest_token_verify(token: str, *, now: float | None = None) -> IngestClaims:
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise InvalidIngestToken("malformed token")
    expected = _b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidIngestToken("bad signature")
    try:
        transcription_id, track_sid, identity, expires = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise InvalidIngestToken("malformed claims") from exc
    if not all(isinstance(v, str) for v in (transcription_id, track_sid, identity)) or not isinstance(expires, int):
        raise InvalidIngestToken("malformed claims")
    if (time.time() if now is None else now) >= expires:
        raise InvalidIngestToken("expired")
    return IngestClaims(transcription_id, track_sid, identity, expires)
