"""`/app/` and its demo sign-in (`POST /app/session`): available in embedded mode, refused in production."""

from __future__ import annotations

import jwt
import pytest
from rest_framework.test import APIClient

from scaiwave.models import Tenant, TenantUser

pytestmark = pytest.mark.django_db


def test_the_page_is_served_with_the_vendored_livekit_client_and_no_token(client):
    response = client.get("/app/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/webapp/vendor/livekit-client/livekit-client.umd.js" in html
    assert "/static/webapp/app.js" in html
    assert '"demo": true' in html
    assert "microphone=(self)" in response["Permissions-Policy"]


def test_the_page_in_production_mode_offers_no_demo_sign_in(client, settings):
    settings.SCAIWAVE_MODE = "production"
    response = client.get("/app/")
    assert response.status_code == 200
    assert '"demo": false' in response.content.decode()


def test_continue_as_a_name_mints_a_demo_user_token_the_api_accepts():
    response = APIClient().post("/app/session", {"name": "Alice Smith"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_id"] == "alice-smith"
    assert body["name"] == "Alice Smith"
    tenant = Tenant.objects.get(name="demo")
    claims = jwt.decode(body["token"], tenant.api_secret, algorithms=["HS256"])
    assert claims["iss"] == tenant.api_key_id and claims["sub"] == "alice-smith" and claims["exp"] > claims["iat"]
    assert TenantUser.objects.get(tenant=tenant, external_id="alice-smith").display_name == "Alice Smith"

    mine = APIClient()
    mine.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert mine.get("/app/api/rooms").status_code == 200


def test_the_same_name_signs_in_as_the_same_user_and_reuses_the_demo_tenant():
    first = APIClient().post("/app/session", {"name": "Bob"}, format="json").json()
    second = APIClient().post("/app/session", {"name": "  Bob "}, format="json").json()
    assert first["user_id"] == second["user_id"] == "bob"
    assert Tenant.objects.filter(name="demo").count() == 1


def test_a_name_without_latin_letters_still_gets_a_stable_id():
    first = APIClient().post("/app/session", {"name": "\u674e\u96f7"}, format="json").json()
    second = APIClient().post("/app/session", {"name": "\u674e\u96f7"}, format="json").json()
    assert first["user_id"].startswith("user-") and first["user_id"] == second["user_id"]


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "   "}, {}, {"name": "x" * 81}, {"name": "a\x07b"}])
def test_an_empty_or_unusable_name_is_a_400_problem(body):
    response = APIClient().post("/app/session", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"
    assert not Tenant.objects.filter(name="demo").exists()


def test_sign_in_is_refused_in_production_mode(settings):
    settings.SCAIWAVE_MODE = "production"
    response = APIClient().post("/app/session", {"name": "Alice"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "demo_disabled"
    assert not Tenant.objects.filter(name="demo").exists()
    assert not TenantUser.objects.exists()


def test_sign_in_only_answers_post(client):
    assert client.get("/app/session").status_code == 405
