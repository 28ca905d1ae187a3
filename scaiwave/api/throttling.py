"""Rate limits per API key and per user, counted in the shared cache (Redis in production).

Rates: THROTTLE_SERVER_RATE and THROTTLE_USER_RATE ("N/sec|min|hour|day").
Over the limit: 429 problem with Retry-After.

DRF's SimpleRateThrottle keeps a list of every request's timestamp and rewrites it on each
request, so its cost grows with the limit (a 300,000/min limit meant a list that long on
the hot path). These throttles count in fixed windows instead: one atomic increment per
request, whatever the rate.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from scaiwave.api.auth import Principal

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'1200/min' -> (1200, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


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
        if key is None:
            return True
        now = time.time()
        window_start = int(now // self.window) * self.window
        bucket = f"throttle:{self.scope}:{key}:{window_start}"
        # add() creates the counter with its expiry only if absent; incr() is atomic in Redis.
        cache.add(bucket, 0, timeout=self.window + 1)
        try:
            count = cache.incr(bucket)
        except ValueError:  # evicted between add and incr
            cache.set(bucket, 1, timeout=self.window + 1)
            count = 1
        if count > self.limit:
            self._wait = window_start + self.window - now
            return False
        return True

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
