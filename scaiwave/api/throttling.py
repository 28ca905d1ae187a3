"""Rate limits per API key and per user, counted in the shared cache (Redis in production).

Rates: THROTTLE_SERVER_RATE and THROTTLE_USER_RATE ("N/sec|min|hour|day").
Over the limit: 429 problem with Retry-After.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from scaiwave.api.auth import Principal


class ServerKeyThrottle(SimpleRateThrottle):
    scope = "server"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = request.user
        if isinstance(principal, Principal) and principal.is_server:
            return f"throttle:server:{principal.tenant.pk}"
        return None


class UserThrottle(SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        principal = request.user
        if isinstance(principal, Principal) and principal.user is not None:
            return f"throttle:user:{principal.user.pk}"
        return None
