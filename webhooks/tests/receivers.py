"""A real HTTP webhook receiver for tests: a threaded server on 127.0.0.1 that records requests.

    with WebhookReceiver(script=[500, 500]) as receiver:   # two 500s, then 200s
        receiver.url                                          # http://127.0.0.1:<port>/hook
        receiver.requests                                     # [ReceivedRequest(...)]

A script entry is a status code, "hang" (answer nothing until the test ends), or
("redirect", location). After the script runs out the receiver answers 200.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class WebhookReceiver:
    def __init__(self, script: list[Any] | None = None, *, host: str = "127.0.0.1") -> None:
        self.script = list(script or [])
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 65536  # one write per response (no Nagle stall between headers and body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    action = receiver.script.pop(0) if receiver.script else 200
                if action == "hang":
                    receiver._stop.wait(30)
                    return
                if isinstance(action, tuple) and action[0] == "redirect":
                    self.send_response(307)
                    self.send_header("Location", action[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                reply = b"ok" if action < 400 else b"x" * 10_000  # long error bodies get truncated
                self.send_response(int(action))
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        return list(self.requests)


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(name="webhook_settings")
def webhook_settings_fixture(settings, monkeypatch):
    """Tasks run in-process on commit (Celery eager mode), fast retries, private targets allowed."""
    from scaiwave.celery import app
    from scaiwave.events import services as event_services

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_SCHEDULE = [0.05, 0.05, 0.05, 0.05]
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_TIMEOUT = 2.0
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0
    settings.WEBHOOK_REQUEUE_AFTER = 0.0
    settings.EVENT_SINKS = ["webhooks.services.deliveries_create_for_event"]
    event_services._sinks.cache_clear()
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)
    yield settings
    event_services._sinks.cache_clear()
