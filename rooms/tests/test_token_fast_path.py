"""rooms.token_asgi against Django itself: the same request through scaiwave.asgi.application with the fast path
on and off must get the same status, the same headers in the same order, and the same body (tokens compared by
their claims, since two mints a moment apart differ in `nbf`/`exp`). Plus which requests it must leave to Django,
and the cache window for a rotated key."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import OperationalError
from livekit import api

from rooms import token_asgi
from rooms.models import RoomBan
from scaiwave.crypto import secret_digest
from scaiwave.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    yield data  # no Content-Length: httpx sends it chunked


def _post(path: str, content: Any, headers: dict[str, str], *, query: str = "") -> dict[str, Any]:
    from scaiwave.asgi import application

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path + query, content=content, headers=headers)

    response = asyncio.run(send())
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json"):
        body = json.loads(response.content)
        if isinstance(body, dict) and "token" in body:
            verifier = api.TokenVerifier(django_settings.LIVEKIT_API_KEY, django_settings.LIVEKIT_API_SECRET)
            claims = verifier.verify(body["token"])
            body["token"] = {"identity": claims.identity, "name": claims.name, "video": claims.video}
            # Two mints a moment apart may straddle a second; the value itself is test_tokens' business.
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", body["expiresAt"])
            body["expiresAt"] = "<ISO 8601, UTC, milliseconds>"
    return {"status": response.status_code, "headers": list(response.headers.items()), "body": body}


def _both(settings: Any, monkeypatch: pytest.MonkeyPatch, path: str, content: Any, headers: dict[str, str], **kw):
    """(Django's answer, the fast path's answer, whether the fast path took the request)."""
    taken = []
    decide = token_asgi.token_request_from

    def recording(*args: Any) -> Any:
        request = decide(*args)
        taken.append(request is not None)
        return request

    monkeypatch.setattr(token_asgi, "token_request_from", recording)
    settings.TOKEN_FAST_PATH = False
    django = _post(path, content() if callable(content) else content, headers, **kw)
    settings.TOKEN_FAST_PATH = True
    fast = _post(path, content() if callable(content) else content, headers, **kw)
    return django, fast, taken == [True]


HANDLED = {
    "participant": (BODY, {}),
    "host with metadata": ({**BODY, "role": "host", "metadata": {"é": "\u2028", "n": [1, None]}}, {}),
    "viewer, extra members ignored": ({**BODY, "role": "viewer", "extra": 1}, {}),
    "spaces trimmed": ({**BODY, "name": " Alice ", "roomId": "standup\t"}, {}),
    "numbers as strings": ({**BODY, "roomId": 42, "userId": 7.5}, {}),
    "charset utf-8": (BODY, {"Content-Type": "application/json; charset=UTF-8"}),
    "accept json": (BODY, {"Accept": "application/json"}),
    "accept list": (BODY, {"Accept": "text/html, */*"}),
    "bad role": ({**BODY, "role": "owner"}, {}),
    "blank name": ({**BODY, "name": "  "}, {}),
    "room with a slash": ({**BODY, "roomId": "a/b"}, {}),
    "room too long": ({**BODY, "roomId": "x" * 201}, {}),
    "nul in name": ({**BODY, "name": "A\x00"}, {}),
    "lone surrogate": (b'{"roomId":"r","userId":"\\ud800","name":"A","role":"viewer"}', {}),
    "metadata text": ({**BODY, "metadata": "text"}, {}),
    "metadata null": ({**BODY, "metadata": None}, {}),
    "missing fields": ({}, {}),
    "a list": ([BODY], {}),
    "null": (b"null", {}),
    "empty body": (b"", {}),
    "malformed": (b"{not json", {}),
    "NaN": (b'{"roomId": NaN}', {}),
    "not utf-8": (b"\xff\xfe{}", {}),
    "cut in a character": (b'{"roomId": "caf\xc3', {}),
    "byte order mark": (b"\xef\xbb\xbf" + json.dumps(BODY).encode(), {}),
    "bad key": (BODY, {"X-API-Key": "not-a-key"}),
    "empty key": (BODY, {"X-API-Key": ""}),
    "bad key, malformed body": (b"{not json", {"X-API-Key": "not-a-key"}),
    "unsafe request id": (BODY, {"X-Request-Id": "a b"}),
}


@pytest.mark.parametrize("path", ["/v1/token", "/v1/token/refresh"])
@pytest.mark.parametrize("case", HANDLED)
def test_the_fast_path_answers_what_django_answers(acme, livekit, settings, monkeypatch, path, case):
    payload, extra = HANDLED[case]
    content = payload if isinstance(payload, bytes) else _raw(payload)
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1", **extra}

    django, fast, taken = _both(settings, monkeypatch, path, content, headers)

    assert taken
    if case == "unsafe request id":  # a new random id each time
        assert dict(django["headers"])["x-request-id"] != "a b" and len(dict(fast["headers"])["x-request-id"]) == 32
        django["headers"] = [h for h in django["headers"] if h[0] != "x-request-id"]
        fast["headers"] = [h for h in fast["headers"] if h[0] != "x-request-id"]
    assert fast == django


def test_refusals_of_refresh_match_django(acme, livekit, settings, monkeypatch):
    RoomBan.objects.create(
        tenant=acme.tenant, room_name="standup", identity="alice", until=datetime.now(UTC) + timedelta(minutes=5)
    )
    acme.server().post("/v1/rooms", {"name": "lobby"}, format="json")
    acme.server().put("/v1/rooms/lobby/members/alice", {"powerLevel": 0}, format="json")
    acme.server().delete("/v1/rooms/lobby/members/alice")
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1"}

    for room, code in [("standup", "participant_banned"), ("lobby", "member_removed")]:
        django, fast, taken = _both(settings, monkeypatch, "/v1/token/refresh", _raw({**BODY, "roomId": room}), headers)
        assert taken and fast == django
        assert (fast["status"], fast["body"]["code"]) == (403, code)


def test_a_database_outage_is_the_same_503(acme, livekit, settings, monkeypatch):
    def unavailable(**kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr("rooms.services.refresh_obstacles", unavailable)
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1"}

    django, fast, taken = _both(settings, monkeypatch, "/v1/token/refresh", _raw(BODY), headers)

    assert taken and fast == django
    assert fast["status"] == 503 and dict(fast["headers"])["retry-after"] == "5"


@pytest.fixture
def security_settings() -> Iterator[Callable[..., None]]:
    """SecurityMiddleware reads its settings when the handler builds its middleware chain: override them and
    rebuild the chain of scaiwave.asgi's handler; undo both afterwards."""
    from django.test import override_settings

    from scaiwave.asgi import django_http

    applied: list[override_settings] = []

    def apply(**overrides: Any) -> None:
        override = override_settings(**overrides)
        override.enable()
        applied.append(override)
        django_http.load_middleware(is_async=True)

    yield apply
    for override in reversed(applied):
        override.disable()
    django_http.load_middleware(is_async=True)


def test_behind_a_tls_proxy_hsts_is_added_as_django_adds_it(acme, livekit, settings, monkeypatch, security_settings):
    security_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=3600, SECURE_HSTS_PRELOAD=True
    )
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1"}

    django, fast, taken = _both(
        settings, monkeypatch, "/v1/token", _raw(BODY), {**headers, "X-Forwarded-Proto": "https"}
    )

    assert taken and fast == django
    assert ("strict-transport-security", "max-age=3600; preload") in fast["headers"]


PASSED_TO_DJANGO = {
    "no key": ({}, "", None),
    "a user bearer token": ({"Authorization": "Bearer x.y.z"}, "", None),
    "an Origin": ({"Origin": "https://app.example"}, "", "key"),
    "a query string": ({}, "?format=json", "key"),
    "text/plain": ({"Content-Type": "text/plain"}, "", "key"),
    "another charset": ({"Content-Type": "application/json; charset=latin-1"}, "", "key"),
    "accept html only": ({"Accept": "text/html"}, "", "key"),
    "accept with parameters": ({"Accept": "application/json; indent=4"}, "", "key"),
    "a host not allowed": ({"Host": "evil.example"}, "", "key"),
    "an underscore header": ({"X_API_KEY": "other"}, "", "key"),
}


@pytest.mark.parametrize("case", PASSED_TO_DJANGO)
def test_requests_it_does_not_reproduce_are_left_to_django(acme, livekit, settings, monkeypatch, case):
    extra, query, key = PASSED_TO_DJANGO[case]
    headers = {"Content-Type": "application/json", "X-Request-Id": "r-1", **extra}
    if key:
        headers["X-API-Key"] = acme.api_secret

    django, fast, taken = _both(settings, monkeypatch, "/v1/token", _raw(BODY), headers, query=query)

    assert not taken
    assert fast == django


def test_a_chunked_body_is_left_to_django(acme, livekit, settings, monkeypatch):
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1"}

    django, fast, taken = _both(settings, monkeypatch, "/v1/token", lambda: _chunked(_raw(BODY)), headers)

    assert not taken and fast == django


def test_an_https_redirect_is_left_to_django(acme, livekit, settings, monkeypatch, security_settings):
    security_settings(SECURE_SSL_REDIRECT=True)
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret, "X-Request-Id": "r-1"}

    django, fast, taken = _both(settings, monkeypatch, "/v1/token", _raw(BODY), headers)

    assert not taken and fast == django
    assert fast["status"] == 301


@pytest.mark.parametrize("method", ["GET", "PUT", "OPTIONS"])
def test_other_methods_on_the_token_paths_reach_django(acme, livekit, method):
    from scaiwave.asgi import application

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, "/v1/token", headers={"X-API-Key": acme.api_secret})

    response = asyncio.run(send())

    assert response.status_code == (200 if method == "OPTIONS" else 405)


def test_a_key_rotated_by_another_process_stops_working_within_the_cache_ttl(acme, livekit, monkeypatch):
    monkeypatch.setattr("scaiwave.api.auth._TENANT_CACHE_TTL", 0.5)
    headers = {"Content-Type": "application/json", "X-API-Key": acme.api_secret}
    assert _post("/v1/token", _raw(BODY), headers)["status"] == 200  # now cached in this process
    # What rotate_tenant_secret does, minus clearing this process's cache (it runs in another one).
    Tenant.objects.filter(pk=acme.tenant.pk).update(api_secret_digest=secret_digest("rotated"))

    assert _post("/v1/token", _raw(BODY), headers)["status"] == 200  # within the TTL
    time.sleep(0.6)
    assert _post("/v1/token", _raw(BODY), headers)["status"] == 401


def test_the_middleware_is_the_stack_whose_headers_the_fast_path_adds(settings):
    """rooms.token_asgi adds what these add to a DRF JSON answer; a change here needs a change there."""
    assert settings.MIDDLEWARE == [
        "scaiwave.api.middleware.RequestIdMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
