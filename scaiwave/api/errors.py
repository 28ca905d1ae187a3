"""RFC 9457 problem details: one exception type, one handler.

Every error body carries `type`, `title`, `status`, `detail`, and the extension
members each surface's clients look for: `code` (stable machine code), `error` (the
same code, for the live-calls surface) and `message` (the detail). Field errors go
under `errors`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http_status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger("scaiwave.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProblemError(Exception):
    """A failure the API reports as a problem document. Raise it from services and views."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: Any = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{settings.PROBLEM_TYPE_BASE}/{code.lower().replace('_', '-')}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "error": code,
        "message": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_response(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> Response:
    response = Response(problem_body(status, code, detail, **kwargs), status=status, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_json_response(status: int, code: str, detail: str, **kwargs: Any) -> JsonResponse:
    """For plain Django views and middleware (outside DRF)."""
    return JsonResponse(problem_body(status, code, detail, **kwargs), status=status, content_type=PROBLEM_CONTENT_TYPE)


# Codes for DRF's own exceptions. Surfaces may override per view with `problem_codes`.
_DRF_CODES: dict[type[Exception], tuple[int, str]] = {
    drf_exceptions.NotAuthenticated: (401, "auth_invalid"),
    drf_exceptions.AuthenticationFailed: (401, "auth_invalid"),
    drf_exceptions.PermissionDenied: (403, "forbidden"),
    drf_exceptions.NotFound: (404, "not_found"),
    drf_exceptions.MethodNotAllowed: (405, "method_not_allowed"),
    drf_exceptions.NotAcceptable: (406, "not_acceptable"),
    drf_exceptions.UnsupportedMediaType: (415, "unsupported_media_type"),
    drf_exceptions.Throttled: (429, "rate_limited"),
    drf_exceptions.ParseError: (400, "malformed_request"),
    drf_exceptions.ValidationError: (400, "validation_failed"),
}


def _detail_text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        return _detail_text(detail[0])
    if isinstance(detail, dict) and detail:
        field, value = next(iter(detail.items()))
        return f"{field}: {_detail_text(value)}"
    return str(detail)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    view = context.get("view")
    overrides: dict[str, str] = getattr(view, "problem_codes", {}) or {}
    request = context.get("request")
    is_drf_request = getattr(request, "_request", None) is not None
    if request is not None and is_drf_request:
        # A problem is JSON whatever the view renders otherwise. When content negotiation itself failed
        # (`/v1/schema?format=evil`), DRF would fall back to the view's first renderer: YAML for the schema.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    return problem_for_exception(exc, overrides=overrides, www_authenticate=is_drf_request)


WWW_AUTHENTICATE = 'Bearer realm="scaiwave", X-API-Key'


def problem_for_exception(
    exc: Exception, *, overrides: dict[str, str] | None = None, www_authenticate: bool = True
) -> Response:
    """The problem response for any exception: DRF's EXCEPTION_HANDLER, and the pure-ASGI fast path of
    `POST /v1/token` (rooms.token_asgi), which raises the same exceptions DRF would. Unexpected ones are
    logged and answered 500."""
    overrides = overrides or {}
    if isinstance(exc, ProblemError):
        return problem_response(
            exc.status, exc.code, exc.detail, title=exc.title, errors=exc.errors, headers=exc.headers, **exc.extra
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, drf_exceptions.APIException):
        status, code = next(
            ((s, c) for klass, (s, c) in _DRF_CODES.items() if isinstance(exc, klass)),
            (exc.status_code, "error"),
        )
        code = overrides.get(str(status), code)
        headers: dict[str, str] = {}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        if isinstance(exc, drf_exceptions.ValidationError):
            detail = "The request is not valid: " + _detail_text(exc.detail)
            return problem_response(status, code, detail, errors=exc.detail, headers=headers)
        if status == 401 and www_authenticate:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        return problem_response(status, code, _detail_text(exc.detail), headers=headers)
    if isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
        return database_unavailable_response(exc)
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(
        http_status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "An unexpected error occurred."
    )


# The database went away (restart, fail-over, network): a temporary condition, not a bug.
DATABASE_UNAVAILABLE_ERRORS = (DatabaseOperationalError, DatabaseInterfaceError)
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable_response(exc: Exception) -> Response:
    logger.error("database unavailable: %s", type(exc).__name__, exc_info=exc)
    return problem_response(
        http_status.HTTP_503_SERVICE_UNAVAILABLE,
        "database_unavailable",
        "The database is not reachable right now; try again shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_json_response(404, "not_found", "No such resource.")


def handler500(request: HttpRequest) -> JsonResponse:
    return problem_json_response(500, "internal_error", "An unexpected error occurred.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_json_response(400, "bad_request", "The request could not be understood.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_json_response(403, "forbidden", "You may not do this.")
