"""Standard Webhooks signatures (https://www.standardwebhooks.com).

`webhook-signature` is `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`;
several signatures are separated by a space (the current and the previous secret during a
rotation's grace period). Secrets look like `whsec_<base64 key>`; the key is the decoded part, as
every Standard Webhooks library reads it (the prefix is optional there too). A secret a client
chooses for this format must have that shape (`standard_secret_problem`); rows saved before that
rule with another shape sign with the secret's raw UTF-8 bytes.

rtcstack's own format (an endpoint's `format`): the body is `{"event", "payload", "deliveryId"}` and
`X-RTCstack-Signature: sha256=<hex HMAC-SHA256(secret's UTF-8 bytes, body)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
_KEY_BYTES = 32


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


_MIN_KEY_BYTES = 16
_MAX_KEY_BYTES = 64


def _decoded_key(secret: str) -> bytes | None:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def standard_secret_problem(secret: str) -> str | None:
    """Why a client's secret cannot be a Standard Webhooks secret, or None if it can: `whsec_` (optional)
    then standard base64 of 16 to 64 bytes, which the standardwebhooks libraries decode to the same key."""
    key = _decoded_key(secret)
    if key is None:
        return "it is not whsec_ followed by base64"
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        return f"its base64 part decodes to {len(key)} bytes, not {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES}"
    return None


def signing_key(secret: str) -> bytes:
    """The HMAC key a secret stands for (raw UTF-8 only for rows saved before secrets were checked)."""
    return _decoded_key(secret) or secret.encode()


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def rtcstack_signature(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(*, secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (in order)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets_
        ),
    }
