"""Webhook delivery the way livekit-server does it (livekit.md §3), plus injectable faults.

One notifier per URL; inside it one FIFO queue and one worker per resource key (egress id, ingress id, room name,
participant identity, track sid — the first present). Retries on connection errors, 429 and 5xx except 501 with
exponential back-off; events are dropped when they waited longer than ``max_age`` or their queue is full.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from google.protobuf import json_format
from livekit.protocol.webhook import WebhookEvent

from .config import EmulatorConfig
from .ids import EVENT_PREFIX, new_id

log = logging.getLogger("livekit_emulator.webhooks")

TOKEN_TTL_SECONDS = 300
MAX_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class WebhookFaults:
    """Delivery faults: ``duplicate`` extra copies of each event, ``delay_ms`` before each send,
    ``reorder`` shuffles events queued within ``reorder_window_ms``, ``drop_rate`` drops that fraction."""

    duplicate: int = 0
    delay_ms: int = 0
    reorder: bool = False
    reorder_window_ms: int = 300
    drop_rate: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicate": self.duplicate,
            "delay_ms": self.delay_ms,
            "reorder": self.reorder,
            "reorder_window_ms": self.reorder_window_ms,
            "drop_rate": self.drop_rate,
        }


@dataclass
class _Delivery:
    event: str
    event_id: str
    body: bytes
    token: str
    enqueued_at: float = field(default_factory=time.monotonic)


@dataclass
class WebhookStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))


def serialize_event(event: WebhookEvent) -> bytes:
    """protojson as Go emits it: camelCase keys, defaults omitted, int64 as strings, enums as names."""
    return json_format.MessageToJson(event, indent=None, ensure_ascii=False).encode("utf-8")


def sign_body(body: bytes, api_key: str, api_secret: str, *, now: int | None = None) -> str:
    """The bare JWT LiveKit puts in Authorization: iss, iat, nbf, exp=+5 min and sha256 of the exact bytes."""
    issued = int(time.time()) if now is None else now
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    claims = {"iss": api_key, "iat": issued, "nbf": issued, "exp": issued + TOKEN_TTL_SECONDS, "sha256": digest}
    return jwt.encode(claims, api_secret, algorithm="HS256")


def resource_key(event: WebhookEvent) -> str:
    if event.HasField("egress_info") and event.egress_info.egress_id:
        return "egress:" + event.egress_info.egress_id
    if event.HasField("ingress_info") and event.ingress_info.ingress_id:
        return "ingress:" + event.ingress_info.ingress_id
    if event.HasField("room") and event.room.name:
        return "room:" + event.room.name
    if event.HasField("participant") and event.participant.identity:
        return "participant:" + event.participant.identity
    if event.HasField("track") and event.track.sid:
        return "track:" + event.track.sid
    return "default"


class _UrlNotifier:
    def __init__(self, hub: WebhookNotifier, url: str) -> None:
        self.hub = hub
        self.url = url
        self.queues: dict[str, deque[_Delivery]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.reorder_buffer: list[_Delivery] = []
        self.reorder_task: asyncio.Task[None] | None = None

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values()) + len(self.reorder_buffer)

    def enqueue(self, key: str, delivery: _Delivery) -> None:
        faults = self.hub.faults
        if faults.reorder:
            self.reorder_buffer.append(delivery)
            if self.reorder_task is None or self.reorder_task.done():
                self.reorder_task = asyncio.get_running_loop().create_task(self._flush_reordered())
            return
        queue = self.queues.setdefault(key, deque())
        if len(queue) >= self.hub.config.webhook_max_depth:
            self.hub.record_drop(self.url, delivery, "queue full")
            return
        queue.append(delivery)
        worker = self.workers.get(key)
        if worker is None or worker.done():
            self.workers[key] = asyncio.get_running_loop().create_task(self._drain(key))

    async def _drain(self, key: str) -> None:
        queue = self.queues[key]
        while queue:
            delivery = queue.popleft()
            if time.monotonic() - delivery.enqueued_at > self.hub.config.webhook_max_age:
                self.hub.record_drop(self.url, delivery, "max age exceeded")
                continue
            await self.hub.deliver(self.url, delivery)

    async def _flush_reordered(self) -> None:
        await asyncio.sleep(self.hub.faults.reorder_window_ms / 1000)
        batch, self.reorder_buffer = self.reorder_buffer, []
        if len(batch) > 1:
            shuffled = batch[:]
            random.shuffle(shuffled)
            # A shuffle can return the original order; a reorder fault that reorders nothing is useless in tests.
            if [d.event_id for d in shuffled] == [d.event_id for d in batch]:
                shuffled.reverse()
            batch = shuffled
        for delivery in batch:
            await self.hub.deliver(self.url, delivery)

    def cancel(self) -> None:
        for task in list(self.workers.values()) + ([self.reorder_task] if self.reorder_task else []):
            task.cancel()


class WebhookNotifier:
    """Signs and delivers WebhookEvents to the configured URLs."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.faults = WebhookFaults()
        self.stats = WebhookStats()
        self._notifiers: dict[str, _UrlNotifier] = {}
        self._session: aiohttp.ClientSession | None = None

    def emit(self, event: WebhookEvent, extra_targets: list[tuple[str, str]] | None = None) -> WebhookEvent:
        """Stamp ``id``/``created_at`` and queue the event for every URL. ``extra_targets`` are (url, api key)
        pairs from an egress request's own ``webhooks``. Returns the stamped event."""
        event.id = new_id(EVENT_PREFIX)
        event.created_at = int(time.time())
        body = serialize_event(event)
        targets = [(url, self.config.webhook_key) for url in self.config.webhook_urls]
        targets += extra_targets or []
        key = resource_key(event)
        for url, api_key in targets:
            secret = self.config.keys.get(api_key) or self.config.keys[self.config.webhook_key]
            if api_key not in self.config.keys:
                api_key = self.config.webhook_key
            delivery = _Delivery(event.event, event.id, body, sign_body(body, api_key, secret))
            if self.faults.drop_rate > 0 and random.random() < self.faults.drop_rate:
                self.record_drop(url, delivery, "fault injection")
                continue
            notifier = self._notifiers.get(url)
            if notifier is None:
                notifier = self._notifiers[url] = _UrlNotifier(self, url)
            notifier.enqueue(key, delivery)
        return event

    def record_drop(self, url: str, delivery: _Delivery, reason: str) -> None:
        self.stats.dropped += 1
        self.stats.log.append(
            {"url": url, "event": delivery.event, "id": delivery.event_id, "result": "dropped", "reason": reason}
        )
        log.info("webhook %s %s to %s dropped: %s", delivery.event, delivery.event_id, url, reason)

    async def deliver(self, url: str, delivery: _Delivery) -> None:
        copies = 1 + max(0, self.faults.duplicate)
        for _ in range(copies):
            if self.faults.delay_ms > 0:
                await asyncio.sleep(self.faults.delay_ms / 1000)
            await self._send_with_retries(url, delivery)

    async def _send_with_retries(self, url: str, delivery: _Delivery) -> None:
        session = await self._get_session()
        headers = {
            "Content-Type": "application/webhook+json",
            "Authorization": delivery.token,
            "User-Agent": "LiveKit",
        }
        last = ""
        for attempt in range(MAX_ATTEMPTS):
            self.stats.attempts += 1
            retry = False
            try:
                async with session.post(url, data=delivery.body, headers=headers) as response:
                    await response.read()
                    status = response.status
                last = f"HTTP {status}"
                retry = status == 429 or (500 <= status < 600 and status != 501)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                retry = True
            if not retry:
                # Like go-retryablehttp: any non-retryable status, 4xx included, counts as sent.
                self.stats.sent += 1
                self.stats.log.append(
                    {
                        "url": url,
                        "event": delivery.event,
                        "id": delivery.event_id,
                        "result": "sent",
                        "status": last,
                        "attempts": attempt + 1,
                    }
                )
                return
            if attempt + 1 < MAX_ATTEMPTS:
                await asyncio.sleep(min(self.config.webhook_retry_base * (2**attempt), MAX_BACKOFF_SECONDS))
        self.stats.failed += 1
        self.stats.log.append(
            {
                "url": url,
                "event": delivery.event,
                "id": delivery.event_id,
                "result": "failed",
                "status": last,
                "attempts": MAX_ATTEMPTS,
            }
        )

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout))
        return self._session

    def pending(self) -> int:
        return sum(n.pending() for n in self._notifiers.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "urls": list(self.config.webhook_urls),
            "faults": self.faults.as_dict(),
            "sent": self.stats.sent,
            "failed": self.stats.failed,
            "dropped": self.stats.dropped,
            "attempts": self.stats.attempts,
            "pending": self.pending(),
            "log": list(self.stats.log),
        }

    def reset(self) -> None:
        for notifier in self._notifiers.values():
            notifier.cancel()
        self._notifiers.clear()
        self.faults = WebhookFaults()
        self.stats = WebhookStats()

    async def close(self) -> None:
        for notifier in self._notifiers.values():
            notifier.cancel()
        if self._session is not None:
            await self._session.close()
