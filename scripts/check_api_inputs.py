"""Hostile inputs `make check-api` sends besides schemathesis: the shapes that were 500s once (issue 18).

Each is a hard check: the answer must not be a 5xx, and an error must be an RFC 9457 problem with
type/title/status/code (status matching HTTP). Some also pin the status they must get.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

DEEP_JSON = ("[" * 5_000 + "]" * 5_000).encode()
DEEP_METADATA = ('{"a": ' * 3_000 + "1" + "}" * 3_000).encode()


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    files: Any = None
    data: dict[str, str] | None = None
    expect: tuple[int, ...] = ()  # empty: any 4xx (or 2xx) that is not a 5xx


def _json_operations(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and "application/json" in json.dumps(
                operation.get("requestBody", {})
            ):
                yield method.upper(), re.sub(r"\{room_id\}|\{roomId\}", "fuzz-room", path)


def _filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def probes(schema: dict[str, Any], *, api_key: str, member_token: str, tenant_key_id: str) -> list[Probe]:
    server = {"X-API-Key": api_key}
    member = {"Authorization": f"Bearer {member_token}"}
    json_type = {"Content-Type": "application/json"}
    found: list[Probe] = []
    for method, path in _json_operations(schema):
        for who, headers in (("key", server), ("member", member)):
            found.append(
                Probe(f"deep JSON {method} {path} ({who})", method, _filled(path), headers | json_type, DEEP_JSON)
            )
    token_body = b'{"roomId": "fuzz-room", "userId": "u", "name": "U", "role": "participant", "metadata": '
    found.append(
        Probe(
            "deep metadata on /v1/token",
            "POST",
            "/v1/token",
            server | json_type,
            token_body + DEEP_METADATA + b"}",
            expect=(400,),
        )
    )
    found.append(
        Probe(
            "deep metadata on an upload",
            "POST",
            "/api/calls/analyze",
            member,
            files={"file": ("a.wav", b"RIFF0000WAVE", "audio/wav")},
            data={"metadata": DEEP_METADATA.decode()},
            expect=(400,),
        )
    )
    wav = ("a.wav", b"RIFF0000WAVE", "audio/wav")
    # File parts where the Scryon upload expects text, and a duplicated `file` part: each was a 500 once.
    found.append(
        Probe(
            "metadata as a JSON file part",
            "POST",
            "/api/calls/analyze",
            member,
            files=[("file", wav), ("metadata", ("blob", b'{"title": "Q"}', "application/json"))],
        )
    )
    found.append(
        Probe(
            "two file parts",
            "POST",
            "/api/calls/analyze",
            member,
            files=[("file", wav), ("file", wav)],
            expect=(400,),
        )
    )
    found.append(
        Probe(
            "title as a file part",
            "POST",
            "/api/calls/analyze",
            member,
            files=[("file", wav), ("title", ("title.txt", b"A title", "text/plain"))],
        )
    )
    surrogate = jwt.encode({"iss": tenant_key_id, "sub": "\ud800", "exp": int(time.time()) + 600}, api_key, "HS256")
    found.append(
        Probe(
            "JWT sub with a lone surrogate",
            "GET",
            "/v1/calls/x",
            {"Authorization": f"Bearer {surrogate}"},
            expect=(401,),
        )
    )
    forever = jwt.encode({"iss": tenant_key_id, "sub": "member-1", "exp": 253402300799}, api_key, "HS256")
    found.append(
        Probe("JWT exp in the year 9999", "GET", "/v1/calls/x", {"Authorization": f"Bearer {forever}"}, expect=(401,))
    )
    found.append(
        Probe(
            "1.3 MB bearer token", "GET", "/v1/rooms", {"Authorization": "Bearer " + "a" * 1_300_000}, expect=(401, 431)
        )
    )
    found.append(
        Probe("one 16 MB header", "GET", "/v1/rooms", server | {"X-Padding": "p" * 16 * 1024 * 1024}, expect=(431,))
    )
    found.append(Probe("Range of 5,000 digits", "GET", "/v1/media/x", {"Range": "bytes=" + "9" * 5_000 + "-"}))
    found.append(Probe("static path climbing out", "GET", "/static/..%2f..%2fsettings.py", {}, expect=(404,)))
    found.append(Probe("unknown schema format", "GET", "/v1/schema?format=evil", {}, expect=(404,)))
    found.append(
        Probe(
            "member id with NUL in the path",
            "PUT",
            "/v1/rooms/fuzz-room/members/a%00b",
            server | json_type,
            b'{"powerLevel": 0}',
            expect=(400,),
        )
    )
    found.append(
        Probe(
            "10,000-character member id", "DELETE", "/v1/rooms/fuzz-room/members/" + "m" * 10_000, server, expect=(400,)
        )
    )
    return found


def _problem_failure(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    if "application/problem+json" not in response.headers.get("content-type", ""):
        return f"{response.status_code} with Content-Type {response.headers.get('content-type')!r}"
    try:
        body = response.json()
    except ValueError:
        return "problem body is not JSON"
    missing = [member for member in ("type", "title", "status", "code") if member not in body]
    if missing:
        return f"problem lacks {missing}"
    if body["status"] != response.status_code:
        return f"problem status {body['status']} != {response.status_code}"
    return None


def run(base: str, *, api_key: str, member_token: str, tenant_key_id: str) -> list[str]:
    """Send every probe; returns what failed (empty: all held)."""
    failures = []
    with httpx.Client(base_url=base, timeout=60) as client:
        schema = client.get("/v1/schema", params={"format": "json"}).json()
        for probe in probes(schema, api_key=api_key, member_token=member_token, tenant_key_id=tenant_key_id):
            try:
                request = client.build_request(
                    probe.method,
                    probe.path,
                    headers=probe.headers,
                    content=probe.body,
                    files=probe.files,
                    data=probe.data,
                )
                response = client.send(request)
            except httpx.HTTPError as exc:
                failures.append(f"{probe.name}: {type(exc).__name__}: {exc}")
                continue
            problem = _problem_failure(response)
            if response.status_code >= 500:
                failures.append(f"{probe.name}: {response.status_code}")
            elif probe.expect and response.status_code not in probe.expect:
                failures.append(f"{probe.name}: {response.status_code}, expected {probe.expect}")
            elif problem is not None:
                failures.append(f"{probe.name}: {problem}")
    return failures
