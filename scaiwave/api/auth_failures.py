"""Failed authentication, throttled by client address (THROTTLE_AUTH_FAILURE_RATE).

Every answer 401 to a request that presented credentials (a bad X-API-Key or bearer token) counts one
failure for the client's address; once the window's allowance is used up, every request from that address
that presents credentials is answered 429 before they are checked, the good ones too, so guessing learns
nothing more until the window ends. Requests without credentials are not counted (they are not guesses).

The check reads this process's view of the count (no I/O on the hot path); the count itself is shared
(Redis) and refreshed on each failure, so N web processes let through at most N x the rate per window.
RequestIdMiddleware checks and counts for Django's answers, rooms.token_asgi for its own.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from scaiwave.api.throttling import FixedWindowThrottle


class AuthFailureThrottle(FixedWindowThrottle):
    scope = "auth_failure"

    def __init__(self) -> None:
        rates: dict[str, str] = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})  # type: ignore[assignment]
        if self.scope in rates:
            super().__init__()
        else:  # a REST_FRAMEWORK that names no rate for it (an older override): not throttled
            self.limit, self.window, self._wait = 2**62, 60, 0.0

    def _batch(self) -> int:
        return 1  # a failure is rare and must be counted at once


def presents_credentials(meta: dict[str, Any]) -> bool:
    return "HTTP_X_API_KEY" in meta or "HTTP_AUTHORIZATION" in meta


def auth_failures_exceeded(address: str) -> float | None:
    """Seconds to wait if `address` has failed too often in this window, else None."""
    throttle = AuthFailureThrottle()
    return throttle.wait() if throttle.used_up(address) else None


def auth_failure_record(address: str) -> None:
    AuthFailureThrottle().allow_key(address)


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")
