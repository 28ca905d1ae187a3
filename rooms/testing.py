"""Test fixtures for code that talks to LiveKit: the emulator as a real subprocess, and signed webhooks.

Import the fixtures into a test module (or a conftest) with
`from rooms.testing import livekit, livekit_emulator  # noqa: F401`.
"""

from __future__ import annotations

import base64
import hashlib
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import api

from livekit_emulator.testing import EmulatorProcess

# PyJWT warns about LiveKit's 6-byte dev secret on every token the SDK mints.
warnings.filterwarnings("ignore", message=".*HMAC key.*")

EMULATOR_SETTINGS: dict[str, Any] = {
    "webhook_urls": [],
    "speed": 4.0,
    "departure_timeout": 1,
    "empty_timeout": 300,
    "webhook_retry_base": 0.05,
    "webhook_max_age": 30.0,
    "webhook_max_depth": 200,
}


@pytest.fixture(scope="session")
def livekit_emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as process:
        yield process


@pytest.fixture
def livekit(livekit_emulator: EmulatorProcess, settings: Any) -> Iterator[EmulatorProcess]:
    """The shared emulator, reset, with ScaiWave's settings pointed at it."""
    livekit_emulator.control.reset()
    livekit_emulator.control.config(**EMULATOR_SETTINGS)
    settings.LIVEKIT_URL = livekit_emulator.url
    settings.LIVEKIT_API_KEY = livekit_emulator.api_key
    settings.LIVEKIT_API_SECRET = livekit_emulator.api_secret
    settings.LIVEKIT_PUBLIC_URL = livekit_emulator.ws_url
    yield livekit_emulator
    livekit_emulator.control.faults(mode="ok", webhook={"duplicate": 0, "reorder": False, "drop_rate": 0.0})
    livekit_emulator.control.config(webhook_urls=[])


def sign_webhook(body: bytes, *, api_key: str = "devkey", api_secret: str = "secret") -> str:  # noqa: S107 - LiveKit dev secret
    """The Authorization value LiveKit sends with a webhook body: a bare JWT carrying the body's SHA-256."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(api_key, api_secret).with_sha256(digest).to_jwt()


def webhook_body(event: Any) -> bytes:
    """A WebhookEvent as LiveKit sends it: protobuf JSON, camelCase, defaults omitted."""
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(event, indent=None).encode()


def wait_for_webhooks(emulator: EmulatorProcess, *, timeout: float = 15.0, quiet: float = 0.3) -> dict[str, Any]:
    """Wait until the emulator has no webhook queued or in flight (its delivery log stops growing)."""
    import time

    deadline = time.monotonic() + timeout
    last = -1
    stable_since = time.monotonic()
    while True:
        hooks = emulator.control.state()["webhooks"]
        size = len(hooks["log"])
        if size != last or hooks["pending"]:
            last, stable_since = size, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return dict(hooks)
        if time.monotonic() > deadline:
            raise TimeoutError(f"webhooks still pending after {timeout} s: {hooks['pending']}")
        time.sleep(0.05)
