"""Production hardening: deploy checks, secrets, CORS, security headers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update({"DATA_DIR": str(tmp_path), **env_extra})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_djangos_deploy_checks(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_extra={
            "SCAIWAVE_MODE": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "scaiwave.example.com",
        },
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    result = _manage("check", env_extra={"SCAIWAVE_MODE": "production", "SECRET_KEY": ""}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("LIVEKIT_TIMEOUT", "soon"), ("SCAIWAVE_MODE", "x")])
def test_a_bad_setting_fails_loudly_with_its_name(tmp_path, name, value):
    result = _manage("check", env_extra={name: value}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.django_db
def test_cors_is_off_by_default(acme):
    response = acme.server().get("/v1/health", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_cors_allows_configured_origins(acme, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    response = acme.server().get("/v1/health", HTTP_ORIGIN="https://app.example")
    assert response["Access-Control-Allow-Origin"] == "https://app.example"


RTCSTACK_HEADERS = "content-type,x-api-key,x-rtcstack-timestamp,x-rtcstack-signature"


def _preflight(client, origin: str):
    return client.options(
        "/v1/rooms",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=RTCSTACK_HEADERS,
    )


@pytest.mark.django_db
def test_the_rtcstack_browser_clients_signature_headers_pass_the_preflight(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]

    response = _preflight(client, "https://app.example")

    assert response["Access-Control-Allow-Origin"] == "https://app.example"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert set(RTCSTACK_HEADERS.split(",")) <= allowed


@pytest.mark.django_db
@pytest.mark.parametrize("origin", ["http://127.0.0.1:5173", "http://localhost:8080", "http://localhost"])
def test_embedded_mode_lets_pages_served_from_this_machine_call_the_api(acme, client, origin):
    preflight = _preflight(client, origin)
    assert preflight["Access-Control-Allow-Origin"] == origin

    response = acme.server().post(
        "/v1/rooms",
        {"name": "playground"},
        format="json",
        HTTP_ORIGIN=origin,
        HTTP_X_RTCSTACK_TIMESTAMP="1767225600",
        HTTP_X_RTCSTACK_SIGNATURE="sha256=00",
    )
    assert response["Access-Control-Allow-Origin"] == origin
    assert response.status_code != 401  # X-API-Key is the authentication; the rtcstack headers are ignored


@pytest.mark.django_db
@pytest.mark.parametrize("origin", ["http://127.0.0.1.evil.example", "http://localhost.evil.example:80", "null"])
def test_embedded_mode_does_not_let_lookalike_origins_in(client, origin):
    assert "Access-Control-Allow-Origin" not in _preflight(client, origin)


def test_production_mode_allows_only_the_listed_origins(tmp_path):
    probe = (
        "from django.conf import settings; print(settings.CORS_ALLOWED_ORIGIN_REGEXES, settings.CORS_ALLOWED_ORIGINS)"
    )
    production = _manage(
        "shell",
        "-c",
        probe,
        env_extra={
            "SCAIWAVE_MODE": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "scaiwave.example.com",
            "CORS_ALLOWED_ORIGINS": "https://app.example",
        },
        tmp_path=tmp_path,
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip().splitlines()[-1] == "[] ['https://app.example']"


@pytest.mark.django_db
def test_html_pages_carry_security_headers(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_api_responses_never_echo_the_api_secret(acme):
    response = acme.server().get("/v1/health")
    assert acme.api_secret not in response.content.decode()
