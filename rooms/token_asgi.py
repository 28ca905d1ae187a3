"""`POST /v1/token` and `POST /v1/token/refresh` without Django's request/response cycle and DRF.

Minting a token is about 100 µs of CPU; Django's handler, its middleware and DRF's view machinery added about
3 ms around it, so a worker served ~200 tokens/s. This pure-ASGI handler sits in front of the Django app
(scaiwave/asgi.py, inside BodySizeLimit) and answers exactly those two paths for POST, with the answers the DRF
views (rooms.views.TokenView and TokenRefreshView) give, by reusing their parts rather than copying them:

- authentication: `X-API-Key` through scaiwave.api.auth's tenant lookup and its per-process cache (a rotated
  or deleted key stops working within its TTL, 5 s, as for every other endpoint);
- throttling: scaiwave.api.throttling.ServerKeyThrottle, the same batched counter that fails open;
- parsing, validation and errors: DRF's JSONParser, rooms.serializers (a fast check for well-formed bodies,
  TokenRequestSerializer for everything else) and scaiwave.api.errors.problem_for_exception, the body of
  DRF's exception handler, so statuses, codes and problem bodies are the same;
- business rules: rooms.services.token_issue and token_refresh (the grants table, the ban check);
- what the middleware adds: X-Request-Id and the access-log line (scaiwave.api.middleware), the security
  headers of SecurityMiddleware and XFrameOptionsMiddleware, CORS's `Vary: origin`, DRF's `Allow`.

Whatever the handler does not reproduce goes to Django untouched, decided from the headers before the body is
read: no `X-API-Key` (anonymous or a user bearer token: DRF answers 401 or 403), an `Origin` header (CORS), a
query string, an Accept, Content-Type or Host Django would treat differently, a chunked body, or an HTTPS
redirect SecurityMiddleware would send. TOKEN_FAST_PATH=false sends everything through Django.

Idempotency-Key is ignored, as by the DRF views (a token is not a created resource). Bodies over the limit
never get here: BodySizeLimit answers 413 around this handler.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from http import HTTPStatus
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from rest_framework import exceptions as drf_exceptions
from rest_framework.renderers import JSONRenderer

from rooms import services
from rooms.serializers import TokenRequestSerializer, token_request_fast
from rooms.views import TokenRefreshView, TokenView
from scaiwave.api.auth import tenant_for_api_secret, tenant_for_api_secret_cached
from scaiwave.api.auth_failures import auth_failure_record, auth_failures_exceeded
from scaiwave.api.body_limit import ASGIApp, Receive, Scope, Send
from scaiwave.api.errors import problem_for_exception
from scaiwave.api.logging import request_id_var
from scaiwave.api.middleware import log_access, request_id_for
from scaiwave.api.parsers import JSONParser, json_loads_bounded
from scaiwave.api.throttling import ServerKeyThrottle
from scaiwave.models import Tenant

request_logger = logging.getLogger("django.request")

# path -> (the DRF view it stands in for, the service it calls, whether that service reads the database)
_ROUTES: dict[str, tuple[type, Callable[..., services.IssuedToken], bool]] = {
    "/v1/token": (TokenView, services.token_issue, False),
    "/v1/token/refresh": (TokenRefreshView, services.token_refresh, True),
}
_JSON_TYPES = {"application/json", "application/json;charset=utf-8"}
_JSON_ACCEPTS = {"*/*", "application/*", "application/json"}
_renderer = JSONRenderer()
_parser = JSONParser()


@dataclass(frozen=True)
class _Settings:
    """The settings this handler reads, taken once: each `settings.X` costs about a microsecond, and there
    are some twenty per request. Rebuilt when a setting changes (override_settings in tests)."""

    enabled: bool
    passes_to_django: bool  # settings under which Django's answer depends on more than this handler checks
    allowed_hosts: list[str]
    use_x_forwarded_host: bool
    proxy_ssl_header: tuple[bytes, str] | None  # (request header, value meaning https)
    ssl_redirect: bool
    default_charset: str
    # Response headers added by the middleware, in Django's order around Content-Length and X-Request-Id.
    frame_options: bytes
    hsts: bytes | None
    security_headers: tuple[tuple[bytes, bytes], ...]


@cache
def _settings() -> _Settings:
    proxy = settings.SECURE_PROXY_SSL_HEADER
    proxy_ssl_header = None
    if proxy:
        meta_name, secure_value = proxy
        proxy_ssl_header = (meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode(), secure_value)
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    hsts = None
    if settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        hsts += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
        hsts += "; preload" if settings.SECURE_HSTS_PRELOAD else ""
    security_headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        security_headers.append((b"x-content-type-options", b"nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        values = [v.strip() for v in policy.split(",")] if isinstance(policy, str) else policy
        security_headers.append((b"referrer-policy", ",".join(values).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        security_headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    security_headers.append((b"vary", b"origin"))  # django-cors-headers, on every response under CORS_URLS_REGEX
    return _Settings(
        enabled=settings.TOKEN_FAST_PATH,
        passes_to_django=bool(
            settings.FORCE_SCRIPT_NAME  # changes path_info
            or settings.DISALLOWED_USER_AGENTS
            or settings.PREPEND_WWW
            or (proxy and not proxy[0].startswith("HTTP_"))
            or any(not re.match(settings.CORS_URLS_REGEX, path) for path in _ROUTES)  # CORS asks a signal
        ),
        allowed_hosts=allowed_hosts,
        use_x_forwarded_host=settings.USE_X_FORWARDED_HOST,
        proxy_ssl_header=proxy_ssl_header,
        ssl_redirect=settings.SECURE_SSL_REDIRECT,
        default_charset=settings.DEFAULT_CHARSET,
        frame_options=getattr(settings, "X_FRAME_OPTIONS", "DENY").upper().encode(),
        hsts=hsts.encode() if hsts else None,
        security_headers=tuple(security_headers),
    )


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    _settings.cache_clear()
    _host_allowed.cache_clear()


@dataclass(slots=True)
class TokenRequest:
    """What the handler needs from a request it can answer exactly as Django would."""

    path: str
    api_key: str
    content_length: int
    charset: str
    request_id: str
    secure: bool


def _header_map(scope: Scope) -> dict[bytes, bytes] | None:
    headers: dict[bytes, bytes] = {}
    for raw_name, value in scope["headers"]:
        name = raw_name.lower()
        if b"_" in name:  # Django folds `x_api_key` into the META key of `x-api-key`; leave such oddities to it
            return None
        # Repeated headers are joined with "," in Django's META.
        headers[name] = headers[name] + b"," + value if name in headers else value
    return headers


def _is_secure(scope: Scope, headers: dict[bytes, bytes], config: _Settings) -> bool:
    """HttpRequest.is_secure(): SECURE_PROXY_SSL_HEADER's first value if that header came, else the scheme."""
    if config.proxy_ssl_header is not None:
        name, secure_value = config.proxy_ssl_header
        value = headers.get(name)
        if value is not None:
            return value.decode("latin1").split(",", 1)[0].strip() == secure_value
    return (scope.get("scheme") or "http") == "https"


@lru_cache(maxsize=256)
def _host_allowed(host: bytes) -> bool:
    """CommonMiddleware's request.get_host() would pass (else Django answers 400 and logs DisallowedHost)."""
    domain, _ = split_domain_port(host.decode("latin1"))
    return bool(domain) and validate_host(domain, _settings().allowed_hosts)


def _accepts_plain_json(accept: bytes | None) -> bool:
    """DRF's content negotiation picks its JSONRenderer with no media-type parameters."""
    if accept is None:
        return True
    if b";" in accept:
        return False
    return any(item.strip() in _JSON_ACCEPTS for item in accept.decode("latin1").split(","))


def _media_type(content_type: bytes) -> str:
    return content_type.decode("latin1").lower().replace(" ", "")


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def token_request_from(scope: Scope, config: _Settings) -> TokenRequest | None:
    """The request, if this handler can answer it exactly as Django and DRF would; None sends it to Django."""
    if scope.get("query_string") or scope.get("root_path") or config.passes_to_django:
        return None  # ?format= picks a DRF renderer; a script prefix changes path_info
    headers = _header_map(scope)
    if headers is None or b"origin" in headers:
        return None
    api_key = headers.get(b"x-api-key")
    if api_key is None:
        return None  # anonymous or a user bearer token: DRF's 401/403, and user tokens create users
    if auth_failures_exceeded(_client_address(scope)) is not None:
        return None  # RequestIdMiddleware answers 429
    raw_type = headers.get(b"content-type", b"")
    content_type = "application/json" if raw_type == b"application/json" else _media_type(raw_type)
    if content_type not in _JSON_TYPES:
        return None  # DRF: 415, or another charset to decode with
    length = headers.get(b"content-length")
    if length is None or not length.isdigit():
        return None  # DRF ignores a body without Content-Length; Django answers a bad one 400
    if not _accepts_plain_json(headers.get(b"accept")):
        return None  # DRF: 406, or renderer parameters such as indent
    secure = _is_secure(scope, headers, config)
    if config.ssl_redirect and not secure:
        return None  # SecurityMiddleware redirects to HTTPS
    host = headers.get(b"x-forwarded-host") if config.use_x_forwarded_host else None
    if host is None:
        host = headers.get(b"host")
    if host is None or not _host_allowed(host):
        return None  # CommonMiddleware: 400
    return TokenRequest(
        path=scope["path"],
        api_key=api_key.decode("latin1"),
        content_length=int(length),
        charset="utf-8" if content_type.endswith("charset=utf-8") else config.default_charset,
        request_id=request_id_for(headers.get(b"x-request-id", b"").decode("latin1")),
        secure=secure,
    )


class TokenFastPath:
    """ASGI middleware: answers POST /v1/token and /v1/token/refresh; passes everything else to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        config = _settings()
        request = token_request_from(scope, config) if route is not None and config.enabled else None
        if route is None or request is None:
            await self.app(scope, receive, send)
            return
        # Read before anything else, like Django; BodySizeLimit's receive raises (and answers 413) past the limit.
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        started = time.perf_counter()
        context_token = request_id_var.set(request.request_id)
        try:
            status, content_type, payload, extra_headers = await _answer(request, route, body)
        finally:
            request_id_var.reset(context_token)
        headers = _response_headers(request, config, route[0], content_type, len(payload), extra_headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        log_access(request_id=request.request_id, method="POST", path=request.path, status=status, started=started)
        if status == 401:  # a bad API key: counted per address, as RequestIdMiddleware does for Django's answers
            await sync_to_async(auth_failure_record, thread_sensitive=False)(_client_address(scope))
        if status >= 400:  # what django.utils.log.log_response writes for Django's answers
            level = logging.ERROR if status >= 500 else logging.WARNING
            request_logger.log(level, "%s: %s", HTTPStatus(status).phrase, request.path, extra={"status_code": status})


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


Answer = tuple[int, str, bytes, list[tuple[str, str]]]


async def _answer(request: TokenRequest, route: tuple[type, Callable[..., Any], bool], body: bytes) -> Answer:
    """In DRF's order: authenticate, throttle, parse, validate, then the service. Any exception becomes the
    problem DRF's exception handler would render."""
    _, issue, reads_database = route
    try:
        tenant = await _authenticate(request.api_key)
        await _throttle(tenant)
        data = _validated(_parsed(body, request))
        arguments = {
            "tenant": tenant,
            "room_name": data["roomId"],
            "identity": data["userId"],
            "name": data["name"],
            "role": data["role"],
            "metadata": data["metadata"],
        }
        if reads_database:
            issued = await sync_to_async(_with_database, thread_sensitive=False)(issue, arguments)
        else:
            issued = issue(**arguments)  # pure CPU (a signature): a thread would only add the hop
    except Exception as exc:
        response = problem_for_exception(exc)
        extra = [(name, value) for name, value in response.headers.items() if name.lower() != "content-type"]
        return response.status_code, str(response.content_type), _renderer.render(response.data), extra
    token = {"token": issued.token, "url": issued.url, "expiresAt": services.iso_ms(issued.expires_at)}
    return 200, _renderer.media_type, _renderer.render(token), []


def _with_database(function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Run in a worker thread with the connection handling Django gives a request (request_started and
    request_finished close unusable or expired connections; with the pool that returns them)."""
    close_old_connections()
    try:
        return function(**arguments)
    finally:
        close_old_connections()


async def _authenticate(api_key: str) -> Tenant:
    """ApiKeyAuthentication: the cache answers on the event loop; a miss reads the database in a thread."""
    tenant = tenant_for_api_secret_cached(api_key) if api_key else None
    if tenant is None and api_key:
        tenant = await sync_to_async(_with_database, thread_sensitive=False)(
            tenant_for_api_secret, {"api_secret": api_key}
        )
    if tenant is None:
        raise drf_exceptions.AuthenticationFailed("The API key is not valid.")
    return tenant


async def _throttle(tenant: Tenant) -> None:
    """ServerKeyThrottle, as DRF's check_throttles runs it (counted on the event loop; see allow_key_async)."""
    throttle = ServerKeyThrottle()
    if not await throttle.allow_key_async(tenant.pk):
        raise drf_exceptions.Throttled(throttle.wait())


def _parsed(body: bytes, request: TokenRequest) -> Any:
    """request.data: DRF gives {} for an empty body and parses the rest with its JSONParser (ParseError)."""
    if request.content_length == 0:
        return {}
    if request.charset == "utf-8" and _parser.strict:
        # What JSONParser does for a valid UTF-8 body, without its stream reader (a few µs); for anything it
        # would refuse, the parser itself runs below and raises its own ParseError.
        try:
            return json_loads_bounded(body.decode("utf-8"))
        except ValueError:
            pass
    return _parser.parse(io.BytesIO(body), _parser.media_type, {"encoding": request.charset})


def _validated(data: Any) -> dict[str, Any]:
    fast = token_request_fast(data)
    if fast is not None:
        return fast
    serializer = TokenRequestSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@cache
def _allow(view: type) -> bytes:
    """DRF's `Allow` header for the view (APIView.default_response_headers)."""
    return ", ".join(view().allowed_methods).encode()


def _response_headers(
    request: TokenRequest,
    config: _Settings,
    view: type,
    content_type: str,
    length: int,
    extra: list[tuple[str, str]],
) -> list[tuple[bytes, bytes]]:
    """The headers Django's stack puts on the DRF view's answer, in its order: the view's (Content-Type, any
    WWW-Authenticate or Retry-After, Allow), XFrameOptionsMiddleware, CommonMiddleware's Content-Length,
    SecurityMiddleware, CORS's Vary and RequestIdMiddleware's X-Request-Id."""
    headers = [(b"content-type", content_type.encode())]
    headers.extend((name.lower().encode(), value.encode("latin1")) for name, value in extra)
    headers.append((b"allow", _allow(view)))
    headers.append((b"x-frame-options", config.frame_options))
    headers.append((b"content-length", str(length).encode()))
    if config.hsts is not None and request.secure:
        headers.append((b"strict-transport-security", config.hsts))
    headers.extend(config.security_headers)
    headers.append((b"x-request-id", request.request_id.encode()))
    return headers
