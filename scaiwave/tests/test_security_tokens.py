"""Forged and replayed credentials: user JWTs the auth must refuse (beyond scaiwave/tests/test_auth.py), and
LiveKit webhooks outside their token's validity at POST /v1/calls/webhook.

The user-token cases hit GET /api/calls, an endpoint only a user token opens (200 with a good token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook
from rest_framework.test import APIClient

from rooms.testing import sign_webhook, webhook_body
from scaiwave.testing import TenantCreds
from webhooks.models import LiveKitEvent

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:The HMAC key is")]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], key: bytes, digest: str = "sha256") -> str:
    """A JWT built by hand, so that the header may say anything (PyJWT refuses to sign some of these)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), getattr(hashlib, digest)).digest()
    return f"{signing_input}.{_b64(signature)}"


def _calls_with(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/calls").status_code


def _claims(creds: TenantCreds, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"iss": creds.api_key_id, "sub": "alice", "exp": int(time.time()) + 300}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_the_baseline_token_opens_the_endpoint(acme):
    token = jwt.encode(_claims(acme), acme.api_secret, algorithm="HS256")
    assert _calls_with(token) == 200


def test_a_token_signed_with_hs512_and_the_right_secret_is_rejected(acme):
    token = jwt.encode(_claims(acme), acme.api_secret, algorithm="HS512")
    assert _calls_with(token) == 401


def test_an_rs256_header_over_an_hmac_signature_with_the_api_secret_is_rejected(acme):
    # Algorithm confusion: the header claims RS256 but the signature is HMAC-SHA256 keyed with the secret.
    token = _hand_signed({"alg": "RS256", "typ": "JWT"}, _claims(acme), acme.api_secret.encode())
    assert _calls_with(token) == 401


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_unsigned_tokens_in_any_spelling_are_rejected(acme, alg, signature):
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(acme)).encode())
    assert _calls_with(f"{header}.{payload}.{signature}") == 401


def test_a_token_without_its_signature_segment_is_rejected(acme):
    token = jwt.encode(_claims(acme), acme.api_secret, algorithm="HS256")
    assert _calls_with(token.rsplit(".", 1)[0]) == 401


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"iss": None}, id="no-issuer"),
        pytest.param({"iss": ""}, id="empty-issuer"),
        pytest.param({"iss": ["AK1", "AK2"]}, id="issuer-not-a-string"),
        pytest.param({"exp": "tomorrow"}, id="exp-not-a-number"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-valid-yet"),
        pytest.param({"sub": ""}, id="empty-subject"),
    ],
)
def test_tokens_with_bad_claims_are_rejected(acme, changes):
    token = _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(acme, **changes), acme.api_secret.encode())
    assert _calls_with(token) == 401


def test_a_token_naming_another_tenant_as_issuer_is_rejected_even_with_that_tenants_header(acme, globex):
    # acme's secret, globex's key id: the issuer picks the secret, so the signature cannot match.
    token = jwt.encode(_claims(acme, iss=globex.api_key_id), acme.api_secret, algorithm="HS256")
    assert _calls_with(token) == 401


def test_a_rejected_token_is_a_problem_that_does_not_echo_the_token(acme):
    token = jwt.encode(_claims(acme), acme.api_secret, algorithm="HS512")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/api/calls")
    assert response["Content-Type"] == "application/problem+json"
    assert token not in response.content.decode()
    assert acme.api_secret not in response.content.decode()


# --- LiveKit webhooks -----------------------------------------------------------------------------

LIVEKIT_KEY, LIVEKIT_SECRET = "devkey", "secret"


@pytest.fixture
def livekit_keys(settings):
    settings.LIVEKIT_API_KEY = LIVEKIT_KEY
    settings.LIVEKIT_API_SECRET = LIVEKIT_SECRET


def _event(event_id: str = "EV_replay000001") -> bytes:
    event = lk_webhook.WebhookEvent(
        event="room_started", id=event_id, created_at=int(time.time()), room=lk_models.Room(sid="RM_1", name="r")
    )
    return webhook_body(event)


def _livekit_token(body: bytes, **claims: Any) -> str:
    """A webhook Authorization value like LiveKit's, with the validity window given explicitly."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    now = int(time.time())
    payload = {"iss": LIVEKIT_KEY, "sha256": digest, "nbf": now - 5, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, LIVEKIT_SECRET, algorithm="HS256")


def _deliver(body: bytes, authorization: str) -> Any:
    return APIClient().post(
        "/v1/calls/webhook", data=body, content_type="application/webhook+json", HTTP_AUTHORIZATION=authorization
    )


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"nbf": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, id="expired-an-hour-ago"),
        pytest.param({"nbf": int(time.time()) - 600, "exp": int(time.time()) - 120}, id="expired-beyond-leeway"),
        pytest.param({"nbf": int(time.time()) + 600, "exp": int(time.time()) + 900}, id="not-valid-yet"),
        pytest.param({"exp": None}, id="no-exp"),
    ],
)
def test_a_webhook_outside_its_tokens_validity_is_refused_and_not_stored(livekit_keys, claims):
    body = _event()
    response = _deliver(body, _livekit_token(body, **claims))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "webhook_signature_invalid"
    assert not LiveKitEvent.objects.exists()


def test_a_webhook_signed_with_another_algorithm_is_refused(livekit_keys):
    body = _event()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    now = int(time.time())
    token = jwt.encode({"iss": LIVEKIT_KEY, "sha256": digest, "exp": now + 300}, LIVEKIT_SECRET, algorithm="HS512")
    assert _deliver(body, token).status_code == 401
    assert not LiveKitEvent.objects.exists()


def test_a_replayed_webhook_within_its_validity_is_stored_once(livekit_keys):
    body = _event("EV_replay000002")
    authorization = sign_webhook(body)

    first = _deliver(body, authorization)
    replays = [_deliver(body, authorization) for _ in range(3)]

    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert all(r.status_code == 200 and r.json()["duplicate"] is True for r in replays)
    record = LiveKitEvent.objects.get()
    assert record.event_id == "EV_replay000002" and record.duplicates == 3
