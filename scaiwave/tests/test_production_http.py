"""Production mode behind the TLS front: browsers are sent to HTTPS, the deployment's own plain-HTTP calls are not.

Each case runs in a fresh interpreter with the production environment, so the settings module reads it as a
deployment would; Django's test client drives the full middleware stack there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

REQUESTS = """
import json, sys, django
django.setup()
from django.test import Client
client = Client()
results = []
for method, host, path, headers in json.loads(sys.argv[1]):
    response = getattr(client, method)(path, HTTP_HOST=host, **headers)
    results.append({"status": response.status_code, "location": response.get("Location", "")})
print(json.dumps(results))
"""


def production_responses(tmp_path: Path, requests: list[tuple[str, str, str, dict[str, str]]], **env: str) -> list:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scaiwave.settings",
        "SCAIWAVE_MODE": "production",
        "SECRET_KEY": "production-test-secret-key-that-is-long-enough-for-django",
        "DATA_DIR": str(tmp_path),
        "ALLOWED_HOSTS": "sw.example.test",
        "BEHIND_TLS_PROXY": "true",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS, json.dumps(requests)],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    responses: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return responses


@pytest.fixture
def internal_web(tmp_path: Path):
    def run(*requests: tuple[str, str, str, dict[str, str]]) -> list:
        return production_responses(tmp_path, list(requests), INTERNAL_HOSTS="web")

    return run


def test_a_browser_on_plain_http_is_sent_to_https(internal_web) -> None:
    [admin] = internal_web(("get", "sw.example.test", "/admin/", {}))
    assert admin == {"status": 301, "location": "https://sw.example.test/admin/"}


def test_a_request_the_tls_front_forwarded_is_served_not_redirected(internal_web) -> None:
    [admin] = internal_web(("get", "sw.example.test", "/admin/", {"HTTP_X_FORWARDED_PROTO": "https"}))
    assert admin["status"] == 302
    assert admin["location"].startswith("/admin/login/")


def test_livekit_webhook_to_the_internal_service_name_reaches_the_intake(internal_web) -> None:
    # No signature: the intake itself answers 401, which proves neither the redirect nor the host check stopped it.
    [webhook] = internal_web(("post", "web:8000", "/v1/calls/webhook", {}))
    assert webhook["status"] == 401


def test_probes_answer_on_plain_http_through_the_internal_name(internal_web) -> None:
    [healthz] = internal_web(("get", "web:8000", "/healthz", {}))
    assert healthz["status"] == 200


def test_the_api_is_still_https_only_through_the_internal_name(internal_web) -> None:
    [health] = internal_web(("get", "web:8000", "/v1/health", {}))
    assert health == {"status": 301, "location": "https://web:8000/v1/health"}


def test_a_host_that_is_neither_public_nor_internal_is_refused(internal_web) -> None:
    [unknown] = internal_web(("get", "intruder.test", "/healthz", {}))
    assert unknown["status"] == 400
