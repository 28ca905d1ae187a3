"""Is a worker consuming the speech queue right now? A heartbeat, so the API can answer 503 when none is.

A Celery worker that consumes the `transcription` queue refreshes one short-lived mark every
TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL seconds (a Redis key with a time-to-live, or a file's modification time
without Redis, where every process shares one machine). The mark outlives three missed beats, so a dead or
stopped worker (or a deployment that never started the `stt-post` profile) reads as absent within that time;
any live worker keeps it fresh, so several workers need no coordination.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery import bootsteps
from django.conf import settings

logger = logging.getLogger("scaiwave.transcription")

SPEECH_QUEUE = "transcription"
HEARTBEAT_KEY = "scaiwave:heartbeat:speech-worker"


def _lifetime() -> float:
    return 3 * float(settings.TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL)


def _heartbeat_file() -> Path:
    return Path(settings.DATA_DIR) / "heartbeats" / "speech-worker"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def speech_worker_heartbeat_send() -> None:
    """Mark a speech worker as alive for the next three intervals."""
    if settings.REDIS_URL:
        _redis().set(HEARTBEAT_KEY, str(time.time()), px=int(_lifetime() * 1000))
        return
    path = _heartbeat_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def speech_worker_alive() -> bool:
    """True when some worker on the speech queue has beaten recently. An unreachable Redis reads as no worker."""
    if settings.REDIS_URL:
        try:
            return bool(_redis().exists(HEARTBEAT_KEY))
        except redis.RedisError:
            return False
    try:
        return time.time() - _heartbeat_file().stat().st_mtime < _lifetime()
    except OSError:
        return False


class SpeechWorkerHeartbeat(bootsteps.StartStopStep):
    """Worker boot step: beats while this worker consumes the speech queue, from its start to its stop."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        queues = parent.app.amqp.queues
        if SPEECH_QUEUE not in (queues.consume_from or queues):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="speech-worker-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                speech_worker_heartbeat_send()
            except (redis.RedisError, OSError):
                logger.warning("speech worker heartbeat not stored", exc_info=True)
            self._stop.wait(float(settings.TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL))
