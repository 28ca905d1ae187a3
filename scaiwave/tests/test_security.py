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
