"""Secrets never reach a log line or an API answer they do not belong to.

One run that does what handles secrets: creates a tenant and rotates its API secret, calls with good and bad API
keys and user tokens, creates/rotates/tests webhooks with signing secrets, mints LiveKit tokens through a LiveKit
whose API secret is known, fails to reach LiveKit, writes an upload to S3 with a known secret key and fails to
reach S3. Every log record of the run (root logger at DEBUG, formatted as production formats it, plus the raw
message and extras) and every response (body and headers) is then searched for every secret the run created.
The only answers allowed to carry a secret are the ones that hand it out: the webhook create/rotate answers (their
own signing secret) and the token answers (the LiveKit token)."""

from __future__ import annotations

import base64
import io
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from rest_framework.test import APIClient

from livekit_emulator.testing import EmulatorProcess, free_port
from scaiwave.api.logging import JsonFormatter
from scaiwave.services import tenant_rotate_secret
from scaiwave.testing import make_tenant
from transcription.tests.analysis_support import tone_wav

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:The HMAC key is")]

LIVEKIT_SECRET = "lk-sentinel-" + secrets.token_hex(16)
S3_ACCESS_KEY = "AKIASENTINEL" + secrets.token_hex(4).upper()
S3_SECRET = "s3-sentinel-" + secrets.token_hex(16)
BUCKET = "security-secrets"


class _Capture(logging.Handler):
    """Every record, as production would print it, plus its raw message, args and extras."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.formatter_json = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not hasattr(record, "request_id"):
            record.request_id = ""
        self.lines.append(self.formatter_json.format(record))
        self.lines.append(repr(record.msg) + repr(record.args) + repr(vars(record)))


@pytest.fixture
def captured_logs() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="module")
def livekit_with_known_secret() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(api_secret=LIVEKIT_SECRET) as process:
        yield process


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_storage(settings: Any, endpoint: str) -> None:
    settings.S3_BUCKET = BUCKET
    settings.S3_ENDPOINT_URL = endpoint
    settings.S3_ACCESS_KEY_ID = S3_ACCESS_KEY
    settings.S3_SECRET_ACCESS_KEY = S3_SECRET
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "access_key": S3_ACCESS_KEY,
                "secret_key": S3_SECRET,
                "region_name": "us-east-1",
                "addressing_style": "path",
                "file_overwrite": False,
            },
        },
    }


@dataclass
class Answers:
    """Every response of the run, with the secrets it is allowed to contain."""

    seen: list[tuple[str, str, set[str]]] = field(default_factory=list)

    def record(self, label: str, response: Any, *, may_contain: set[str] | None = None) -> Any:
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
        self.seen.append((label, headers + "\n" + body.decode(errors="replace"), may_contain or set()))
        return response


def _upload(client: APIClient) -> Any:
    file = io.BytesIO(tone_wav(0.3))
    file.name = "call.wav"
    return client.post("/api/calls/analyze", {"file": file}, format="multipart")


def test_no_secret_reaches_the_logs_or_an_answer_it_does_not_belong_to(
    settings, captured_logs, livekit_with_known_secret, moto_url
):
    emulator = livekit_with_known_secret
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_API_KEY = emulator.api_key
    settings.LIVEKIT_API_SECRET = LIVEKIT_SECRET
    settings.LIVEKIT_TIMEOUT = 1
    boto3.client(
        "s3", endpoint_url=moto_url, aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET
    ).create_bucket(Bucket=BUCKET)
    _s3_storage(settings, moto_url)
    answers = Answers()
    secrets_made: dict[str, str] = {"livekit api secret": LIVEKIT_SECRET, "s3 secret key": S3_SECRET}

    # A tenant, its secret rotated; the old one tried after rotation.
    acme = make_tenant("acme-secrets")
    old_secret = acme.api_secret
    secrets_made["tenant secret (old)"] = old_secret
    new_secret = tenant_rotate_secret(tenant=acme.tenant)
    secrets_made["tenant secret (new)"] = new_secret
    from scaiwave.api.auth import clear_tenant_cache

    clear_tenant_cache()
    server = APIClient()
    server.credentials(HTTP_X_API_KEY=new_secret)
    stale = APIClient()
    stale.credentials(HTTP_X_API_KEY=old_secret)
    answers.record("health", server.get("/v1/health"))
    answers.record("health with the old secret", stale.get("/v1/health"))
    answers.record("readyz", APIClient().get("/readyz"))

    # User tokens, good and forged.
    acme.api_secret = new_secret
    user_token = acme.user_token("alice", name="Alice")
    secrets_made["user token"] = user_token
    alice = APIClient()
    alice.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token}")
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token[:-4]}AAAA")
    answers.record("user list", alice.get("/api/calls"))
    answers.record("forged user", forged.get("/api/calls"))

    # Webhooks: one with a secret of ours, one generated, one rotated, a test send, the lists.
    chosen = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    secrets_made["webhook secret (chosen)"] = chosen
    created = server.post("/v1/webhooks", {"url": "https://hooks.example.com/a", "secret": chosen}, format="json")
    assert created.status_code == 201, created.content
    answers.record("webhook create (chosen)", created, may_contain={chosen})
    generated = server.post("/v1/webhooks", {"url": "https://hooks.example.com/b"}, format="json")
    assert generated.status_code == 201, generated.content
    generated_secret = generated.json()["secret"]
    secrets_made["webhook secret (generated)"] = generated_secret
    answers.record("webhook create (generated)", generated, may_contain={generated_secret})
    hook = created.json()["id"]
    rotated = server.post(f"/v1/webhooks/{hook}/rotate-secret", {}, format="json")
    assert rotated.status_code == 200, rotated.content
    rotated_secret = rotated.json()["secret"]
    secrets_made["webhook secret (rotated)"] = rotated_secret
    answers.record("webhook rotate", rotated, may_contain={rotated_secret})
    answers.record("webhook test", server.post(f"/v1/webhooks/{hook}/test", {}, format="json"))
    answers.record("webhook detail", server.get(f"/v1/webhooks/{hook}"))
    answers.record("webhook list", server.get("/v1/webhooks"))
    answers.record("webhook deliveries", server.get(f"/v1/webhooks/{hook}/deliveries"))

    # LiveKit: a room, a token for it, its participants; then LiveKit unreachable.
    answers.record("room create", server.post("/v1/rooms", {"name": "standup"}, format="json"))
    minted = server.post(
        "/v1/token", {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "host"}, format="json"
    )
    assert minted.status_code == 200, minted.content
    livekit_token = minted.json()["token"]
    secrets_made["livekit token"] = livekit_token
    answers.record("token", minted, may_contain={livekit_token})
    answers.record("participants", server.get("/v1/rooms/standup/participants"))
    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    unreachable = server.post("/v1/rooms", {"name": "no-livekit"}, format="json")
    assert unreachable.status_code == 502
    answers.record("room create, livekit down", unreachable)

    # S3: an upload stored there, then S3 unreachable.
    stored = _upload(alice)
    assert stored.status_code == 202, stored.content
    answers.record("upload to s3", stored)
    _s3_storage(settings, f"http://127.0.0.1:{free_port()}")
    answers.record("upload, s3 down", _upload(alice))

    assert len(captured_logs.lines) > 20, "the run should have logged something to search"
    leaks = [
        f"{name} in a log line: {line[:300]}"
        for name, secret in secrets_made.items()
        for line in captured_logs.lines
        if secret in line
    ]
    leaks += [
        f"{name} in the answer to {label}"
        for name, secret in secrets_made.items()
        for label, text, allowed in answers.seen
        if secret in text and secret not in allowed
    ]
    assert not leaks, "\n".join(leaks)
