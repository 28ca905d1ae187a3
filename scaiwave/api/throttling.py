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

from asgiref.sync import sync_to_async
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


_redis_clients: dict[tuple[str, ...], Any] = {}
_redis_clients_lock = threading.Lock()


def _redis_client(backend: RedisCache) -> Any:
    """One client, and so one connection pool, per process for the backend's primary server.

    Django's cache handler gives each async context its own backend object: under ASGI every request, and
    every sync_to_async thread that flushes a batch here, would get a new RedisCache with a new pool, and so a
    new TCP connection and handshake to Redis for each flush (a tenth of a token-minting worker's time went
    there). The client is kept per server list instead; redis-py's pool is thread-safe."""
    servers: tuple[str, ...] = tuple(backend._servers)  # type: ignore[attr-defined]  # set by RedisCache.__init__
    client = _redis_clients.get(servers)
    if client is None:
        with _redis_clients_lock:
            client = _redis_clients.get(servers)
            if client is None:
                client = _redis_clients[servers] = backend._cache.get_client(None, write=True)
    return client


def _add_hits(bucket: str, hits: int, *, ttl: int) -> int:
    """Add hits to a window's shared counter and return the new total, in one Redis round trip."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = _redis_client(backend)
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
    go with the next one). Low limits use a batch of 1, which is exact in one process.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[int, int, float]] = {}  # bucket -> (pending, last_total, last_flush)
        self.in_flight: dict[str, int] = {}  # bucket -> hits being added to the shared counter right now

    def hit(self, bucket: str, *, ttl: int, batch: int) -> int:
        """Count one hit and return this process's view of the window's total, flushing if it is due."""
        total, batch_to_send = self.count(bucket, batch=batch)
        return self.flush(bucket, batch_to_send, ttl=ttl) if batch_to_send else total

    def count(self, bucket: str, *, batch: int) -> tuple[int, int]:
        """Count one hit here, without any I/O. Returns this process's view of the total and the number of
        hits the caller must now add to the shared counter with flush() (0: none). A batch is handed to one
        caller only; hits counted while it is in flight go with the next one."""
        with self.lock:
            pending, last_total, last_flush = self.buckets.get(bucket, (0, 0, 0.0))
            pending += 1
            now = time.monotonic()
            batch_to_send = 0
            if bucket not in self.in_flight and (pending >= batch or now - last_flush > 0.2):
                batch_to_send, pending, last_flush = pending, 0, now
                self.in_flight[bucket] = batch_to_send
            if len(self.buckets) > 10_000:  # old windows: drop them
                self.buckets.clear()
            self.buckets[bucket] = (pending, last_total, last_flush)
            return last_total + pending + self.in_flight.get(bucket, 0), batch_to_send

    def view(self, bucket: str) -> int:
        """This process's view of a window's total, without counting a hit or any I/O."""
        with self.lock:
            pending, last_total, _ = self.buckets.get(bucket, (0, 0, 0.0))
            return last_total + pending + self.in_flight.get(bucket, 0)

    def flush(self, bucket: str, hits: int, *, ttl: int) -> int:
        """Add the `hits` count() handed out to the shared counter (a Redis round trip, outside the lock, so
        other threads go on counting meanwhile) and return the new view of the total."""
        try:
            total: int | None = _add_hits(bucket, hits, ttl=ttl)
        except Exception as exc:  # the shared cache is down: count locally, flush when it is back
            _log_cache_down(exc)
            total = None
        with self.lock:
            del self.in_flight[bucket]
            pending, last_total, last_flush = self.buckets.get(bucket, (0, 0, time.monotonic()))
            if total is None:
                pending += hits
            else:
                last_total = total
            self.buckets[bucket] = (pending, last_total, last_flush)
            return last_total + pending + self.in_flight.get(bucket, 0)


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

    def allow_key(self, key: str) -> bool:
        """Count one request for `key`; False (and wait() says how long) once the window's limit is passed."""
        now = time.time()
        window_start = int(now // self.window) * self.window
        count = _tally.hit(self._bucket(key, window_start), ttl=self.window + 1, batch=self._batch())
        return self._decide(count, window_start, now)

    async def allow_key_async(self, key: str) -> bool:
        """allow_key for an event loop (rooms.token_asgi): the hit is counted on the loop; only a batch's
        Redis round trip runs in a thread, so a slow Redis never stalls the loop."""
        now = time.time()
        window_start = int(now // self.window) * self.window
        bucket = self._bucket(key, window_start)
        count, batch_to_send = _tally.count(bucket, batch=self._batch())
        if batch_to_send:
            count = await sync_to_async(_tally.flush, thread_sensitive=False)(
                bucket, batch_to_send, ttl=self.window + 1
            )
        return self._decide(count, window_start, now)

    def used_up(self, key: str) -> bool:
        """Whether `key` has used this window's whole allowance, as far as this process knows (no I/O, counts
        nothing); wait() then says how long until the next window."""
        now = time.time()
        window_start = int(now // self.window) * self.window
        return not self._decide(_tally.view(self._bucket(key, window_start)) + 1, window_start, now)

    def _decide(self, count: int, window_start: int, now: float) -> bool:
        if count > self.limit:
            self._wait = window_start + self.window - now
            return False
        return True

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
