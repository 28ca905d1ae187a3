"""Rate limits per API key and per user, counted in the shared cache (Redis in production).

Rates: THROTTLE_SERVER_RATE and THROTTLE_USER_RATE ("N/sec|min|hour|day").
Over the limit: 429 problem with Retry-After.

DRF's SimpleRateThrottle keeps a list of every request's timestamp and rewrites it on each
request, so its cost grows with the limit (a 300,000/min limit meant a list that long on
the hot path). These throttles count in fixed windows instead: one atomic increment per
request, whatever the rate.

While Redis is unreachable the throttles fail open: hits are counted in the process and added to
the shared counter once it answers again (docs/reliability.md), so an outage of the cache never
takes the API down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from scaiwave.api.auth import Principal

logger = logging.getLogger("scaiwave.throttling")

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'1200/min' -> (1200, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def _add_hits(bucket: str, hits: int, *, ttl: int) -> int:
    """Add hits to a window's shared counter and return the new total, in one Redis round trip."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(bucket, write=True)
        redis_key = backend.make_and_validate_key(bucket)
        pipe = client.pipeline(transaction=False)
        pipe.incrby(redis_key, hits)
        pipe.expire(redis_key, ttl, nx=True)
        total, _ = pipe.execute()
        return int(total)
    # Local-memory cache (embedded mode, one process): add() then incr() is good enough.
    cache.add(bucket, 0, timeout=ttl)
    try:
        return int(cache.incr(bucket, hits))
    except ValueError:  # evicted between add and incr
        cache.set(bucket, hits, timeout=ttl)
        return hits


_last_cache_warning = 0.0


def _log_cache_down(exc: Exception) -> None:
    """Rate limits fail open while Redis is away (reads keep being served); warn at most every 10 s."""
    global _last_cache_warning
    now = time.monotonic()
    if now - _last_cache_warning > 10:
        _last_cache_warning = now
        logger.warning("throttle counter unavailable, counting locally: %r", exc)


class _LocalTally:
    """Hits counted in this process and not yet added to the shared counter.

    A high limit (thousands a minute) does not need an exact global count on every request:
    the process flushes its hits in batches of up to `batch` (or every 0.2 s), so a request
    costs no round trip at all most of the time. The global count can run ahead of the
    limit by at most processes x batch (plus the hits that arrive during a round trip, which
    wait for the next one). Low limits use a batch of 1, which is exact in one process.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[int, int, float]] = {}  # bucket -> (pending, last_total, last_flush)
        self.in_flight: dict[str, int] = {}  # bucket -> hits being added to the shared counter right now

    def hit(self, bucket: str, *, ttl: int, batch: int, may_flush: bool = True) -> int:
        """Count one hit and return this process's view of the window's total. With may_flush=False the hit
        is only counted here, never sent (the next hit that may flush takes it along)."""
        with self.lock:
            pending, last_total, last_flush = self.buckets.get(bucket, (0, 0, 0.0))
            pending += 1
            now = time.monotonic()
            sent = 0
            if may_flush and bucket not in self.in_flight and (pending >= batch or now - last_flush > 0.2):
                sent, pending, last_flush = pending, 0, now
                self.in_flight[bucket] = sent
            if len(self.buckets) > 10_000:  # old windows: drop them
                self.buckets.clear()
            self.buckets[bucket] = (pending, last_total, last_flush)
            if not sent:
                return last_total + pending + self.in_flight.get(bucket, 0)
        # The round trip runs outside the lock: other threads go on counting locally meanwhile.
        try:
            total: int | None = _add_hits(bucket, sent, ttl=ttl)
        except Exception as exc:  # the shared cache is down: count locally, flush when it is back
            _log_cache_down(exc)
            total = None
        with self.lock:
            del self.in_flight[bucket]
            pending, last_total, last_flush = self.buckets.get(bucket, (0, 0, now))
            if total is None:
                pending += sent
            else:
                last_total = total
            self.buckets[bucket] = (pending, last_total, last_flush)
            return last_total + pending + self.in_flight.get(bucket, 0)

    def flush_due(self, bucket: str, *, batch: int) -> bool:
        """Whether the next hit() on `bucket` would add to the shared counter, a Redis round trip. A lock-free
        peek: async callers run such a hit in a thread and count the others on the event loop (may_flush=False)."""
        pending, _, last_flush = self.buckets.get(bucket, (0, 0, 0.0))
        return bucket not in self.in_flight and (pending + 1 >= batch or time.monotonic() - last_flush > 0.2)


_tally = _LocalTally()


class FixedWindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        from django.conf import settings

        rates: dict[str, str] = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})  # type: ignore[assignment]
        self.limit, self.window = parse_rate(rates[self.scope])
        self._wait = 0.0

    def key_for(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        key = self.key_for(request)
        return True if key is None else self.allow_key(key)

    def allow_key(self, key: str, *, may_flush: bool = True) -> bool:
        """Count one request for `key`; False (and wait() says how long) once the window's limit is passed.
        may_flush=False never waits on Redis (see blocks_on_shared_counter)."""
        now = time.time()
        window_start = int(now // self.window) * self.window
        bucket = self._bucket(key, window_start)
        count = _tally.hit(bucket, ttl=self.window + 1, batch=self._batch(), may_flush=may_flush)
        if count > self.limit:
            self._wait = window_start + self.window - now
            return False
        return True

    def blocks_on_shared_counter(self, key: str) -> bool:
        """Whether allow_key(key) would wait on Redis now (see _LocalTally.flush_due); if not, an async
        caller counts the hit on its event loop with allow_key(key, may_flush=False)."""
        window_start = int(time.time() // self.window) * self.window
        return _tally.flush_due(self._bucket(key, window_start), batch=self._batch())

    def _bucket(self, key: str, window_start: int) -> str:
        return f"throttle:{self.scope}:{key}:{window_start}"

    def _batch(self) -> int:
        return max(1, min(50, self.limit // 200))

    def wait(self) -> float | None:
        return max(self._wait, 1.0)


class ServerKeyThrottle(FixedWindowThrottle):
    scope = "server"

    def key_for(self, request: Request) -> str | None:
        principal = request.user
        if isinstance(principal, Principal) and principal.is_server:
            return principal.tenant.pk
        return None


class UserThrottle(FixedWindowThrottle):
    scope = "user"

    def key_for(self, request: Request) -> str | None:
        principal = request.user
        if isinstance(principal, Principal) and principal.user is not None:
            return str(principal.user.pk)
        return None
