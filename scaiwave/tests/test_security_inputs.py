"""Hostile input: oversized request bodies (refused before they are read) and upload file names with paths or
control characters (never part of a storage key)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from recordings.models import MediaEntry
from rooms.models import Room
from scaiwave.tests.test_permission_matrix import api_routes
from transcription.models import UploadedCall
from transcription.tests.analysis_support import stored_files, tone_wav

pytestmark = pytest.mark.django_db

LIMIT = 64 * 1024
UPLOAD = "/api/calls/analyze"

BODY_ROUTES = [(r.pattern, m) for r in api_routes() for m in r.methods if m in ("post", "put", "patch")]


@pytest.fixture
def small_limit(settings: Any) -> None:
    settings.MAX_REQUEST_BODY_BYTES = LIMIT
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT


def _oversized_json() -> bytes:
    return json.dumps({"name": "x" * (LIMIT + 1)}).encode()


def _path(pattern: str) -> str:
    import re

    return "/" + re.sub(r"<\w+>", "any-id", pattern)


def _assert_413_problem(status: int, body: bytes) -> None:
    assert status == 413
    problem = json.loads(body)
    assert problem["code"] == "payload_too_large" and problem["status"] == 413
    assert {"type", "title", "detail"} <= set(problem)


@pytest.mark.parametrize(("pattern", "method"), [r for r in BODY_ROUTES if _path(r[0]) != UPLOAD])
def test_every_json_endpoint_refuses_an_oversized_body_before_authentication(small_limit, pattern, method):
    response = getattr(APIClient(), method)(_path(pattern), _oversized_json(), content_type="application/json")
    _assert_413_problem(response.status_code, response.content)


def test_an_oversized_body_is_refused_for_an_authenticated_caller_and_changes_nothing(small_limit, acme):
    response = acme.server().post("/v1/rooms", _oversized_json(), content_type="application/json")
    _assert_413_problem(response.status_code, response.content)
    assert not Room.objects.exists()


def test_the_upload_endpoint_has_its_own_larger_limit(settings, acme):
    settings.MAX_FILE_SIZE = 1024 * 1024
    declared = settings.MAX_FILE_SIZE + 1024 * 1024 + 1
    response = acme.user("alice").generic(
        "POST", UPLOAD, b"--x--", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=str(declared)
    )
    _assert_413_problem(response.status_code, response.content)


# --- the same at the ASGI door, where chunked bodies arrive without a Content-Length ----------------


def _asgi(path: str, chunks: list[bytes], *, declared: int | None) -> tuple[int, bytes, int]:
    """POST through scaiwave.asgi.application; returns (status, body, how many chunks it read)."""
    from scaiwave.asgi import application

    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    headers.append(
        (b"content-length", str(declared).encode()) if declared is not None else (b"transfer-encoding", b"chunked")
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    pending = list(chunks)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if pending:
            read += 1
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await asyncio.sleep(5)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    status = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:]), read


@pytest.mark.django_db(transaction=True)
def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(small_limit):
    status, body, read = _asgi("/v1/rooms", [b"x" * 1024] * 100, declared=100 * 1024)
    _assert_413_problem(status, body)
    assert read == 0


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(small_limit):
    chunk = b"x" * 8192
    status, body, read = _asgi("/v1/rooms", [chunk] * 64, declared=None)  # 512 KiB against 64 KiB
    _assert_413_problem(status, body)
    assert read == LIMIT // len(chunk) + 1


@pytest.mark.django_db(transaction=True)
def test_a_body_under_the_limit_passes_the_door(small_limit):
    status, body, _ = _asgi("/v1/rooms", [b'{"name": "ok"}'], declared=None)
    assert status == 401 and json.loads(body)["code"] == "auth_invalid"


# --- upload file names ------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../../../tmp/escape.wav",
    "..\\..\\windows\\system32\\evil.wav",
    "/etc/passwd.wav",
    "subdir/../../escape-rel.wav",
    "%2e%2e%2fencoded.wav",
    "ctrl\x00nul.wav",
    "ctrl\x1b[31mansi.wav",
    "line\nfeed.wav",
    "\u202ereversed-vaw.wav",
    "." * 300 + ".wav",
]


def _multipart(file_name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand: test clients would clean the file name before sending it."""
    boundary = "scaiwave-hostile-boundary"
    disposition = f'form-data; name="file"; filename="{file_name}"'.encode("utf-8", "surrogatepass")
    body = (
        f"--{boundary}\r\n".encode()
        + b"Content-Disposition: "
        + disposition
        + b"\r\nContent-Type: audio/wav\r\n\r\n"
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def upload_root(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.mark.parametrize("file_name", HOSTILE_NAMES, ids=[repr(n)[:40] for n in HOSTILE_NAMES])
def test_an_upload_file_name_never_becomes_part_of_the_storage_key(acme, upload_root, file_name):
    body, content_type = _multipart(file_name, tone_wav(0.2))
    response = acme.user("alice").generic("POST", UPLOAD, body, content_type=content_type)

    # Django's parser may refuse a header it cannot read (400); it must never be a 5xx.
    assert response.status_code in (202, 400), response.content
    answer = response.content.decode()
    for fragment in ("escape", "windows", "passwd", "encoded", "ansi", "reversed"):
        assert fragment not in answer
    files = stored_files(upload_root)
    assert all(path.resolve().is_relative_to(upload_root.resolve()) for path in files)
    assert not any(p.name for p in upload_root.parent.iterdir() if p != upload_root), "wrote beside the media root"
    if response.status_code == 400:
        assert not files and not UploadedCall.objects.exists()
        return
    entry = MediaEntry.objects.get()
    key = entry.key
    assert ".." not in key and "\\" not in key and not key.startswith("/")
    assert key.isascii() and key.isprintable()
    for part in Path(file_name.replace("\\", "/")).parts:
        stem = Path(part).stem
        if len(stem) > 3 and stem.strip("."):
            assert stem not in key, f"{stem!r} from the client's name is in the key {key!r}"
    assert default_storage.exists(key)
    assert files == [upload_root / key]
    call = UploadedCall.objects.get()
    assert file_name not in (call.title, call.contact_name)


# --- signed media links ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "expires=102684652603922306896356951719936&sig=%C2%A3%C3%B1%3B%C3%B6I",  # found by check-api: a 500
        "expires=-1&sig=",
        "expires=abc&sig=00",
        "sig=%00%01",
    ],
)
def test_a_forged_media_link_is_a_403_problem_not_a_500(query):
    response = APIClient().get(f"/v1/media/v%F0%A4%BC%88t?{query}")
    assert response.status_code == 403
    assert response.json()["code"] == "media_link_invalid"
