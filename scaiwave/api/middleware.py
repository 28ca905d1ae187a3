"""Request ids on every response, the body-size guard, and a JSON access log line."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from scaiwave.api.errors import problem_json_response
from scaiwave.api.logging import request_id_var

logger = logging.getLogger("scaiwave.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self._guarded(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return response

    def _guarded(self, request: HttpRequest) -> HttpResponse:
        limit = self._body_limit(request)
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                too_big = int(length) > limit
            except ValueError:
                return problem_json_response(400, "bad_request", "Content-Length is not a number.")
            if too_big:
                return problem_json_response(
                    413, "payload_too_large", f"The request body is larger than {limit} bytes."
                )
        return self.get_response(request)

    @staticmethod
    def _body_limit(request: HttpRequest) -> int:
        # Upload endpoints stream to storage and enforce MAX_FILE_SIZE themselves.
        if request.path.startswith("/api/calls/analyze"):
            return settings.MAX_FILE_SIZE + 1024 * 1024
        return settings.MAX_REQUEST_BODY_BYTES
