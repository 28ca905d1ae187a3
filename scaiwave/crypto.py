"""Encryption at rest for tenant API secrets.

The secret must be recoverable (it verifies HS256 user tokens), so it is encrypted
with a Fernet key from ENCRYPTION_KEY (or derived from SECRET_KEY), and a SHA-256
digest is kept beside it for the `X-API-Key` lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    material = settings.ENCRYPTION_KEY or settings.SECRET_KEY
    key = base64.urlsafe_b64encode(hashlib.sha256(("scaiwave-at-rest:" + material).encode()).digest())
    return Fernet(key)


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:  # the key changed since the secret was stored
        raise RuntimeError("tenant secret cannot be decrypted: ENCRYPTION_KEY/SECRET_KEY changed") from exc


def secret_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
