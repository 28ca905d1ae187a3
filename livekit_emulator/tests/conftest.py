"""Fixtures for the emulator's contract tests. They never touch Django or a database."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from livekit import api

from livekit_emulator.testing import EmulatorProcess, free_port

T = TypeVar("T")

# PyJWT warns about LiveKit's 6-byte dev secret on every token the SDK mints.
warnings.filterwarnings("ignore", message=".*HMAC key.*")

BASE_SETTINGS: dict[str, Any] = {
    "webhook_urls": [],
    "speed": 4.0,
    "departure_timeout": 1,
    "empty_timeout": 300,
    "egress_start_delay": 0.05,
    "webhook_retry_base": 0.05,
    "webhook_max_age": 30.0,
    "webhook_max_depth": 200,
}


@pytest.fixture(autouse=True)
def _clear_tenant_cache() -> None:
    """Override the project's autouse fixture of the same name: these tests do not load Django."""


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[EmulatorProcess]:
    env = {"EMULATOR_KEYS": "devkey:secret,otherkey:othersecret-that-is-long-enough-for-hs256"}
    with EmulatorProcess(env=env) as process:
        yield process


@pytest.fixture
def emu(emulator_process: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The shared emulator, reset and set to fast test settings (speed 4, short timeouts)."""
    emulator_process.control.reset()
    emulator_process.control.config(**BASE_SETTINGS)
    yield emulator_process
    emulator_process.control.faults(mode="ok")


def lk(emu: EmulatorProcess, call: Callable[[api.LiveKitAPI], Awaitable[T]], **kwargs: Any) -> T:
    """Run one call with an unmodified ``livekit.api.LiveKitAPI`` (protobuf transport) and return its result."""

    async def main() -> T:
        async with api.LiveKitAPI(
            emu.url, kwargs.get("key", emu.api_key), kwargs.get("secret", emu.api_secret), timeout=kwargs.get("timeout")
        ) as client:
            return await call(client)

    return asyncio.run(main())


class WebhookSink:
    """A tiny HTTP receiver on 127.0.0.1 that records webhook requests and answers ``statuses`` in turn."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                    status = sink.statuses.pop(0) if sink.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/livekit/webhook"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def names(self) -> list[str]:
        return [e["event"] for e in self.events()]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if predicate(events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"webhooks not as expected within {timeout} s: {self.names()}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink(emu: EmulatorProcess) -> Iterator[WebhookSink]:
    receiver = WebhookSink()
    emu.control.config(webhook_urls=[receiver.url])
    yield receiver
    emu.control.config(webhook_urls=[])
    receiver.close()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The speech test transcribes with the project's engine, which reads Django settings: it needs pytest-django.
    if collection_path.name == "test_rtc_speech.py" and not config.pluginmanager.hasplugin("django"):
        return True
    return None


@pytest.fixture(scope="session")
def stt_engine() -> Any:
    """The tiny.en speech engine, loaded once per test session (engine_get caches it for the process)."""
    from transcription.engine import engine_get

    return engine_get("tiny.en")
