"""Request ids on every response, the body-size and failed-authentication guards, and a JSON access log line."""

from __future__ import annotations

import contextvars
import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from scaiwave.api.auth_failures import (
    auth_failure_record,
    auth_failures_exceeded,
    client_address,
    presents_credentials,
)
from scaiwave.api.body_limit import body_limit_for
from scaiwave.api.errors import problem_json_response
from scaiwave.api.logging import request_id_var

logger = logging.getLogger("scaiwave.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(incoming: str) -> str:
    """The caller's X-Request-Id if it is safe to echo and log, else a new one: 32 hex digits. A correlation
    id, not a secret, so it comes from the process's PRNG; uuid4() costs a getrandom() system call per request."""
    return incoming if _SAFE_ID.match(incoming) else f"{random.getrandbits(128):032x}"


def log_access(*, request_id: str, method: str, path: str, status: int, started: float) -> None:
    """The one JSON access-log line per request (also written by rooms.token_asgi's fast path)."""
    logger.info(
        "request",
        extra={
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


class RequestIdMiddleware:
    """Sync and async capable: under ASGI a sync-only middleware would force a thread hop per request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        request_id, token, started = self._begin(request)
        try:
            response = self._refuse_early(request) or self.get_response(request)
        finally:
            request_id_var.reset(token)
        return self._finish(request, response, request_id, started)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request_id, token, started = self._begin(request)
        try:
            response = self._refuse_early(request) or await self.get_response(request)
        finally:
            request_id_var.reset(token)
        return self._finish(request, response, request_id, started)

    @staticmethod
    def _begin(request: HttpRequest) -> tuple[str, contextvars.Token[str], float]:
        request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID", ""))
        return request_id, request_id_var.set(request_id), time.perf_counter()

    @staticmethod
    def _finish(request: HttpRequest, response: HttpResponse, request_id: str, started: float) -> HttpResponse:
        response["X-Request-Id"] = request_id
        if response.status_code == 401 and presents_credentials(request.META):
            auth_failure_record(client_address(request))
        log_access(
            request_id=request_id,
            method=request.method or "",
            path=request.path,
            status=response.status_code,
            started=started,
        )
        return response

    def _refuse_early(self, request: HttpRequest) -> HttpResponse | None:
        return self._refuse_guessing(request) or self._refuse_oversized(request)

    @staticmethod
    def _refuse_guessing(request: HttpRequest) -> HttpResponse | None:
        """429 for credentials from an address that has failed to authenticate too often (auth_failures),
        before they are checked, so a good key learns nothing either."""
        if not presents_credentials(request.META):
            return None
        wait = auth_failures_exceeded(client_address(request))
        if wait is None:
            return None
        response = problem_json_response(
            429, "rate_limited", "Too many failed authentications from this address; try again later."
        )
        response["Retry-After"] = str(max(1, int(wait + 0.999)))
        return response

    def _refuse_oversized(self, request: HttpRequest) -> HttpResponse | None:
        limit = self._body_limit(request)
        length = request.META.get("CONTENT_LENGTH")
        if not length:
            return None
        try:
            too_big = int(length) > limit
        except ValueError:
            return problem_json_response(400, "bad_request", "Content-Length is not a number.")
        if too_big:
            return problem_json_response(413, "payload_too_large", f"The request body is larger than {limit} bytes.")
        return None

    @staticmethod
    def _body_limit(request: HttpRequest) -> int:
        # The same rule as the ASGI wrapper that refuses bodies before Django reads them.
        return body_limit_for(request.path)
