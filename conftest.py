"""Shared fixtures: tenant personas, and a report header saying which database and broker run."""

from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    try:
        from django.conf import settings

        db = settings.DATABASES["default"]
        engine = str(db["ENGINE"]).rsplit(".", 1)[-1]
        lines.append(f"scaiwave database: {engine} {db.get('HOST') or ''} {db['NAME']}")
        lines.append(f"scaiwave redis: {settings.REDIS_URL or 'not configured (filesystem broker)'}")
    except Exception as exc:  # settings not importable: say so instead of failing the header
        lines.append(f"scaiwave settings not loaded: {exc}")
    return lines


@pytest.fixture(autouse=True)
def _clear_tenant_cache() -> None:
    # The per-process tenant cache must not carry rows between tests (the DB is rolled back).
    from scaiwave.api.auth import clear_tenant_cache

    clear_tenant_cache()


@pytest.fixture(autouse=True)
def _auth_failures_not_throttled(settings) -> None:
    # Every test client calls from 127.0.0.1, and the suite's deliberate 401s would pass the per-address
    # limit on failed authentication (scaiwave.api.auth_failures). Its own tests set a rate and an address.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "auth_failure": "100000000/min"},
    }


@pytest.fixture
def acme(db):
    from scaiwave.testing import make_tenant

    return make_tenant("acme")


@pytest.fixture
def globex(db):
    from scaiwave.testing import make_tenant

    return make_tenant("globex")
