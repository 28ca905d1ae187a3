"""Hostile input that used to be a 500: each is a 4xx RFC 9457 problem now, and nothing is logged as an error."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient

from scaiwave.asgi import application
from scaiwave.tests.test_permission_matrix import api_routes

pytestmark = pytest.mark.django_db

BODY_ROUTES = [(r.pattern, m) for r in api_routes() for m in r.methods if m in ("post", "put", "patch")]
DEEP = "[" * 5_000 + "]" * 5_000


def _path(pattern: str) -> str:
    return "/" + re.sub(r"<\w+>", "any-id", pattern)


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def _assert_problem(status: int, content_type: str, body: bytes, expected: int | set[int]) -> dict[str, Any]:
    assert status in ({expected} if isinstance(expected, int) else expected), (status, body[:300])
    assert content_type.startswith("application/problem+json"), content_type
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"]
    return problem


def asgi_request(
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    query: bytes = b"",
    client: str = "127.0.0.1",
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through scaiwave.asgi.application, as uvicorn hands it over (path already percent-decoded)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-length", str(len(body)).encode()), *headers],
        "client": (client, 40000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(5)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    answered = {name.lower(): value for name, value in sent[0]["headers"]}
    return sent[0]["status"], answered, b"".join(m.get("body", b"") for m in sent[1:])


# --- JSON nested past the parser's stack ---------------------------------------------------------


@pytest.mark.parametrize(("pattern", "method"), BODY_ROUTES)
def test_json_nested_thousands_deep_is_a_400_on_every_json_endpoint(acme, caplog, pattern, method):
    for client in (acme.server(), acme.user("alice")):
        response = getattr(client, method)(_path(pattern), DEEP, content_type="application/json")
        assert response.status_code < 500, (response.status_code, response.content[:300])
        if response.status_code == 400:
            assert response["Content-Type"].startswith("application/problem+json")
    assert _errors_logged(caplog) == []


def test_json_nested_thousands_deep_names_the_cause(acme):
    response = acme.server().post("/v1/rooms", DEEP, content_type="application/json")
    problem = _assert_problem(response.status_code, response["Content-Type"], response.content, 400)
    assert problem["code"] == "malformed_request" and "nested" in problem["detail"]


def _deep(levels: int) -> Any:
    value: Any = {"leaf": True}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.django_db(transaction=True)
def test_a_token_request_with_deeply_nested_metadata_is_a_400_at_the_asgi_door(acme, caplog):
    body = '{"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant", "metadata": '
    body += '{"a": ' * 3_000 + "1" + "}" * 3_000 + "}"
    status, headers, content = asgi_request(
        "POST",
        "/v1/token",
        headers=[(b"content-type", b"application/json"), (b"x-api-key", acme.api_secret.encode())],
        body=body.encode(),
    )
    _assert_problem(status, headers[b"content-type"].decode(), content, 400)
    assert _errors_logged(caplog) == []


def test_an_upload_with_deeply_nested_metadata_is_a_400(acme, caplog, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from transcription.tests.analysis_support import tone_wav

    settings.MEDIA_ROOT = tmp_path
    metadata = '{"a": ' * 3_000 + "1" + "}" * 3_000
    response = acme.user("alice").post(
        "/api/calls/analyze",
        {"file": SimpleUploadedFile("a.wav", tone_wav(), content_type="audio/wav"), "metadata": metadata},
        format="multipart",
    )
    problem = _assert_problem(response.status_code, response["Content-Type"], response.content, 400)
    assert problem["code"] == "validation_failed"
    assert _errors_logged(caplog) == []


def test_nesting_within_the_bound_is_accepted():
    from scaiwave.api.parsers import MAX_JSON_DEPTH, json_loads_bounded

    assert json_loads_bounded(json.dumps(_deep(MAX_JSON_DEPTH - 2))) == _deep(MAX_JSON_DEPTH - 2)
    brackets_in_strings = json.dumps({"text": "[" * 10_000})
    assert json_loads_bounded(brackets_in_strings) == {"text": "[" * 10_000}


# --- Token subjects, static paths, schema formats ---------------------------------------


@pytest.mark.parametrize("subject", ["\ud800", "al\x00ice", "a\x1fb"], ids=["lone-surrogate", "nul", "control"])
def test_a_token_whose_subject_cannot_be_stored_is_a_401(acme, caplog, subject):
    token = jwt.encode(
        {"sub": subject, "iss": acme.api_key_id, "exp": int(time.time()) + 600}, acme.api_secret, algorithm="HS256"
    )
    response = APIClient().get("/v1/calls/call-x", HTTP_AUTHORIZATION=f"Bearer {token}")
    problem = _assert_problem(response.status_code, response["Content-Type"], response.content, 401)
    assert problem["code"] == "auth_invalid"
    assert _errors_logged(caplog) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/static/../../settings.py", "/static/..\\..\\settings.py", "/static/%00"])
def test_a_static_path_that_climbs_out_is_a_404_problem_with_a_request_id(caplog, path):
    status, headers, content = asgi_request("GET", path)
    _assert_problem(status, headers[b"content-type"].decode(), content, 404)
    assert headers.get(b"x-request-id")
    assert _errors_logged(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_static_assets_are_still_served_with_a_request_id():
    status, headers, _content = asgi_request("GET", "/static/admin/css/base.css")
    assert status == 200 and headers[b"content-type"].startswith(b"text/css") and headers.get(b"x-request-id")


@pytest.mark.parametrize("fmt", ["evil", "json%00", "openapi"])
def test_an_unknown_schema_format_is_a_json_problem(caplog, client, fmt):
    response = client.get(f"/v1/schema?format={fmt}")
    problem = _assert_problem(response.status_code, response["Content-Type"], response.content, {400, 404, 406})
    assert problem["status"] == response.status_code
    assert _errors_logged(caplog) == []
