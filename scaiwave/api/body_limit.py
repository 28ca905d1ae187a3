"""Request bodies over the limit are refused before they are read; so are oversized headers (431).

Django's ASGI handler reads the whole body (spooling it to disk past FILE_UPLOAD_MAX_MEMORY_SIZE) before any
middleware runs, and its own size check trusts Content-Length, so a chunked body without one was read to the end
and then parsed. This ASGI wrapper sits in front of Django: a declared Content-Length over the limit is answered
413 at once, without reading anything; an undeclared (chunked) or understated body is counted as it arrives and
answered 413 as soon as it passes the limit. RequestIdMiddleware keeps the same check for WSGI and the test client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from scaiwave.api.errors import problem_json_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # Django's handlers type scope/messages as dict/Mapping

# Upload endpoints stream to storage and enforce MAX_FILE_SIZE themselves; they get that much plus room for
# the other multipart parts.
UPLOAD_PATHS = ("/api/calls/analyze",)


def body_limit_for(path: str) -> int:
    if path.startswith(UPLOAD_PATHS):
        return int(settings.MAX_FILE_SIZE) + 1024 * 1024
    return int(settings.MAX_REQUEST_BODY_BYTES)


class _BodyTooLarge(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django's middleware answers 400 for it
    return None


async def _refuse(send: Send, limit: int) -> None:
    response = problem_json_response(413, "payload_too_large", f"The request body is larger than {limit} bytes.")
    await _send_problem(send, response)


async def _send_problem(send: Send, response: Any) -> None:
    headers = [(b"content-type", response["Content-Type"].encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope.get("headers", ())) + len(scope.get("query_string", b""))


class BodySizeLimit:
    """ASGI middleware: 413 problem for HTTP request bodies larger than body_limit_for(path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_limit = int(settings.MAX_REQUEST_HEADER_BYTES)
        if _header_bytes(scope) > header_limit:
            # A 16 MB header or a megabyte-long token would otherwise be parsed and carried through every layer.
            await _send_problem(
                send,
                problem_json_response(
                    431,
                    "request_header_fields_too_large",
                    f"The request's headers and query are larger than {header_limit} bytes.",
                    title="Request Header Fields Too Large",
                ),
            )
            return
        limit = body_limit_for(scope.get("path", ""))
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(send, limit)
