"""Exactly one Celery beat: a beat holds a lock for as long as it runs; a second one waits for it.

Two beats would send every periodic task twice (ring time-outs, sweeps, reconciles). With Redis the
lock is a Redis key with a time-to-live that the holder renews (BEAT_LOCK_TTL): a beat that dies frees
it within the TTL, and the waiting beat takes over. Without Redis (embedded mode, one machine) it is an
exclusive flock on DATA_DIR/celerybeat.lock, which the kernel frees when the holder exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import redis
from django.conf import settings
from redis.exceptions import LockError

logger = logging.getLogger("scaiwave.beat")

BEAT_LOCK_KEY = "scaiwave:celery-beat"
_WAIT_SECONDS = 1.0
_held: list[Any] = []  # keeps the lock (and its file) alive for the life of the process


def _stop_this_beat() -> None:
    # Lost the lock (Redis unreachable for longer than the TTL): another beat may run now, so this one stops.
    logger.error("lost the beat lock; stopping this beat")
    os.kill(os.getpid(), signal.SIGTERM)


def _hold_redis_lock(url: str, ttl: float, *, on_lost: Callable[[], None] = _stop_this_beat) -> threading.Event:
    """Wait for the lock, then renew it every ttl/3 until the returned event is set or the lock is lost."""
    lock = redis.Redis.from_url(url).lock(BEAT_LOCK_KEY, timeout=ttl, thread_local=False)
    announced = False
    while not lock.acquire(blocking=False):
        if not announced:
            logger.warning("another beat holds the beat lock; waiting for it")
            announced = True
        time.sleep(_WAIT_SECONDS)
    _held.append(lock)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except (LockError, redis.RedisError):
                on_lost()
                return

    threading.Thread(target=renew, name="beat-lock", daemon=True).start()
    return stop


def _hold_file_lock(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "a")  # noqa: SIM115 - held open for the life of the process
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not announced:
                logger.warning("another beat holds the beat lock; waiting for it")
                announced = True
            time.sleep(_WAIT_SECONDS)
    _held.append(handle)


def beat_lock_hold(**_kwargs: Any) -> None:
    """Celery's beat_init: block until this beat holds the lock, then keep it until the process ends."""
    if settings.REDIS_URL:
        _hold_redis_lock(settings.REDIS_URL, settings.BEAT_LOCK_TTL)
    else:
        _hold_file_lock(Path(settings.DATA_DIR) / "celerybeat.lock")
    logger.info("beat lock held; this is the one beat")
