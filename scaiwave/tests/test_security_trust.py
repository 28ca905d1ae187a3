"""Trust and secrets: credentials never reach the logs, user tokens are bounded in lifetime and size, headers in
size, and failed authentication is throttled per client address."""

from __future__ import annotations

import logging
import random
import time

import jwt
import pytest
from rest_framework.test import APIClient

from scaiwave.api.logging import JsonFormatter
from scaiwave.tests.test_security_bad_input import asgi_request

pytestmark = pytest.mark.django_db

A_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl"


def _lines(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


# --- credentials in logs -----------------------------------------------------------------------


def test_uvicorns_websocket_line_does_not_log_the_access_token(caplog):
    caplog.set_level(logging.INFO)
    # What uvicorn's websockets protocol writes for every accepted connection (uvicorn.error, INFO).
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:50000", f"/v1/events?access_token={A_JWT}"
    )
    [record] = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert A_JWT not in record.getMessage() and "access_token=[redacted]" in record.getMessage()
    assert A_JWT not in _lines(caplog)


def test_a_refused_signed_media_url_is_logged_without_its_signature(caplog):
    caplog.set_level(logging.INFO)
    response = APIClient().get("/v1/media/me_nope?expires=9999999999&sig=secret-signature-value")
    assert response.status_code in (403, 404)
    logged = _lines(caplog)
    assert "django.request" in logged  # the warning that used to carry the whole URL
    assert "secret-signature-value" not in logged and "sig=[redacted]" in logged


def test_a_bearer_token_in_a_logged_message_or_its_extras_is_redacted(caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("scaiwave.test").warning(
        "calling with Authorization: Bearer %s", A_JWT, extra={"url": f"http://x/v1/media/1?sig=abc&token={A_JWT}"}
    )
    logged = _lines(caplog)
    assert A_JWT not in logged and "sig=abc" not in logged


# --- user tokens: lifetime and size --------------------------------------------------------------


def _token(creds, *, exp: float, sub: str = "alice", **extra) -> str:
    return jwt.encode({"iss": creds.api_key_id, "sub": sub, "exp": int(exp), **extra}, creds.api_secret, "HS256")


def _get_as(token: str):
    return APIClient().get("/v1/calls/call-x", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_token_that_expires_in_the_year_9999_is_refused(acme):
    response = _get_as(_token(acme, exp=253402300799))
    assert response.status_code == 401 and "lifetime" in response.json()["detail"]


def test_a_token_within_the_maximum_lifetime_is_accepted(acme):
    assert _get_as(_token(acme, exp=time.time() + 23 * 3600)).status_code == 404  # authenticated: no such call


def test_the_maximum_lifetime_is_configurable(acme, settings):
    settings.JWT_MAX_LIFETIME_SECONDS = 3600
    assert _get_as(_token(acme, exp=time.time() + 2 * 3600)).status_code == 401
    assert _get_as(_token(acme, exp=time.time() + 1800)).status_code == 404


def test_a_megabyte_token_is_refused_without_being_decoded(acme):
    huge = _token(acme, exp=time.time() + 600, padding="x" * 1_300_000)
    response = _get_as(huge)
    assert response.status_code == 401 and "longer than" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "header",
    [(b"authorization", b"Bearer " + b"a" * 1_300_000), (b"x-padding", b"p" * 16 * 1024 * 1024)],
    ids=["1.3MB-token", "16MB-header"],
)
def test_oversized_headers_are_refused_at_the_door_with_431(header):
    status, headers, body = asgi_request("GET", "/v1/rooms", headers=[header])
    assert status == 431 and headers[b"content-type"] == b"application/problem+json"
    assert b"request_header_fields_too_large" in body


# --- failed authentication per client address ----------------------------------------------------


def _address() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
def five_failures_an_hour(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "auth_failure": "5/hour"},
    }


def test_failed_authentication_is_throttled_by_client_address(acme, five_failures_an_hour):
    guesser, bystander = _address(), _address()
    bad = [APIClient().get("/v1/rooms", HTTP_X_API_KEY=f"guess-{n}", REMOTE_ADDR=guesser) for n in range(7)]
    good_key_from_guesser = acme.server().get("/v1/rooms", REMOTE_ADDR=guesser)
    bystander_answer = acme.server().get("/v1/rooms", REMOTE_ADDR=bystander)
    anonymous_from_guesser = APIClient().get("/v1/rooms", REMOTE_ADDR=guesser)

    assert [r.status_code for r in bad] == [401] * 5 + [429] * 2
    assert bad[-1]["Content-Type"].startswith("application/problem+json") and int(bad[-1]["Retry-After"]) >= 1
    assert good_key_from_guesser.status_code == 429  # nothing more is learnt from this address for now
    assert bystander_answer.status_code != 429
    assert anonymous_from_guesser.status_code == 401  # no credentials: not a guess, not throttled


@pytest.mark.django_db(transaction=True)
def test_bad_keys_on_the_token_fast_path_count_and_are_throttled_too(acme, five_failures_an_hour):
    guesser = _address()
    body = b'{"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}'

    def attempt(key: bytes) -> int:
        headers = [(b"content-type", b"application/json"), (b"x-api-key", key)]
        return asgi_request("POST", "/v1/token", headers=headers, body=body, client=guesser)[0]

    statuses = [attempt(f"guess-{n}".encode()) for n in range(6)]
    assert statuses == [401] * 5 + [429]
    assert attempt(acme.api_secret.encode()) == 429
