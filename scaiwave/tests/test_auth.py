"""Every way a caller authenticates, and every way it fails."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from rest_framework.test import APIClient

from scaiwave.models import TenantUser

pytestmark = pytest.mark.django_db


def health(client: APIClient):
    return client.get("/v1/health")


def test_health_with_valid_api_key_matches_document_001(acme):
    response = health(acme.server())
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["version"], str)
    assert set(body["capabilities"]) == {"transcriptionLive", "transcriptionPost"}
    assert all(isinstance(v, bool) for v in body["capabilities"].values())


def test_health_without_credentials_is_a_401_problem():
    response = APIClient().get("/v1/health")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "auth_invalid" and body["status"] == 401
    assert {"type", "title", "status", "detail", "code", "error", "message"} <= set(body)


def test_bad_api_key_is_rejected(acme):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=acme.api_secret + "x")
    assert health(client).status_code == 401


def test_empty_api_key_is_rejected(acme):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="")
    assert health(client).status_code == 401


def test_user_token_is_not_enough_for_a_server_endpoint(acme):
    response = health(acme.user("alice"))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def _whoami(client: APIClient):
    """The idempotency probe endpoint doubles as an authenticated echo in tests."""
    return client.post("/v1/_test/echo", {"n": 1}, format="json")


@pytest.fixture
def echo_urls(settings):
    settings.ROOT_URLCONF = "scaiwave.tests.echo_urls"


def test_good_user_token_creates_the_user_on_first_use(acme, echo_urls):
    response = _whoami(acme.user("alice", name="Alice A."))
    assert response.status_code == 201, response.content
    assert response.json()["principal"] == "user:alice"
    user = TenantUser.objects.get(tenant=acme.tenant, external_id="alice")
    assert user.display_name == "Alice A."


def test_expired_user_token_is_rejected(acme, echo_urls):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.user_token('alice', ttl=-120)}")
    response = _whoami(client)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_signed_with_another_tenants_secret_is_rejected(acme, globex, echo_urls):
    forged = jwt.encode(
        {"iss": acme.api_key_id, "sub": "alice", "exp": int(time.time()) + 60}, globex.api_secret, algorithm="HS256"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert _whoami(client).status_code == 401


def test_other_tenants_user_is_its_own_user(acme, globex, echo_urls):
    assert _whoami(globex.user("alice")).status_code == 201
    assert TenantUser.objects.filter(external_id="alice", tenant=globex.tenant).exists()
    assert not TenantUser.objects.filter(external_id="alice", tenant=acme.tenant).exists()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c.pop("exp"), id="missing-exp"),
        pytest.param(lambda c: c.pop("sub"), id="missing-sub"),
        pytest.param(lambda c: c.update(iss="AKUNKNOWN"), id="unknown-issuer"),
    ],
)
def test_user_tokens_missing_required_claims_are_rejected(acme, echo_urls, mutate):
    claims = {"iss": acme.api_key_id, "sub": "alice", "exp": int(time.time()) + 60}
    mutate(claims)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt.encode(claims, acme.api_secret, algorithm='HS256')}")
    assert _whoami(client).status_code == 401


def test_alg_none_token_is_rejected(acme, echo_urls):
    token = jwt.encode({"iss": acme.api_key_id, "sub": "alice", "exp": int(time.time()) + 60}, None, algorithm="none")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert _whoami(client).status_code == 401


def test_non_bearer_authorization_scheme_is_rejected(acme, echo_urls):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=")
    assert _whoami(client).status_code == 401


def test_rotated_secret_stops_working_for_api_key_and_tokens(acme, echo_urls):
    from scaiwave.services import tenant_rotate_secret

    old_client = acme.server()
    old_token = acme.user_token("alice")
    new_secret = tenant_rotate_secret(tenant=acme.tenant)
    from scaiwave.api.auth import clear_tenant_cache

    clear_tenant_cache()
    assert health(old_client).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {old_token}")
    assert _whoami(client).status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_X_API_KEY=new_secret)
    assert health(fresh).status_code == 200


class _JwksServer:
    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def idp_keys():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig", alg="RS256")
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    ec_jwk.update(kid="ec-1", use="sig", alg="ES256")
    server = _JwksServer({"keys": [rsa_jwk, ec_jwk]})
    yield {"rsa": rsa_key, "ec": ec_key, "url": server.url}
    server.close()


@pytest.fixture
def external_idp(settings, acme, idp_keys):
    import scaiwave.api.auth as auth

    settings.JWT_JWKS_URL = idp_keys["url"]
    settings.JWT_ISSUER = "https://idp.example.test"
    settings.JWT_AUDIENCE = "scaiwave"
    settings.JWT_JWKS_TENANT = acme.api_key_id
    auth._jwks_client = None
    return idp_keys


def _idp_token(key, alg: str, kid: str, **overrides):
    claims = {
        "iss": "https://idp.example.test",
        "aud": "scaiwave",
        "sub": "firebase-uid-1",
        "exp": int(time.time()) + 60,
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize(("keyname", "alg", "kid"), [("rsa", "RS256", "rsa-1"), ("ec", "ES256", "ec-1")])
def test_external_identity_provider_token_is_verified_against_jwks(external_idp, echo_urls, keyname, alg, kid):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_idp_token(external_idp[keyname], alg, kid)}")
    response = _whoami(client)
    assert response.status_code == 201, response.content
    assert response.json()["principal"] == "user:firebase-uid-1"


def test_external_token_with_wrong_audience_is_rejected(external_idp, echo_urls):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_idp_token(external_idp['rsa'], 'RS256', 'rsa-1', aud='other')}")
    assert _whoami(client).status_code == 401


def test_external_token_signed_by_unknown_key_is_rejected(external_idp, echo_urls):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_idp_token(stranger, 'RS256', 'rsa-1')}")
    assert _whoami(client).status_code == 401


def test_rs256_token_without_a_configured_jwks_is_rejected(acme, echo_urls, idp_keys):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_idp_token(idp_keys['rsa'], 'RS256', 'rsa-1')}")
    assert _whoami(client).status_code == 401
