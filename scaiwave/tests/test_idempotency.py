"""Idempotency-Key: replay, conflict, and concurrent duplicates (real PostgreSQL transactions)."""

from __future__ import annotations

import threading

import pytest

from scaiwave.tests import echo_urls

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def probe_urls(settings):
    settings.ROOT_URLCONF = "scaiwave.tests.echo_urls"
    echo_urls.executions.clear()


def test_same_key_and_body_replays_the_first_response(acme):
    client = acme.server()
    first = client.post("/v1/_test/echo", {"n": 7}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post("/v1/_test/echo", {"n": 7}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert echo_urls.executions == [7]


def test_same_key_with_another_body_is_a_422(acme):
    client = acme.server()
    client.post("/v1/_test/echo", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    response = client.post("/v1/_test/echo", {"n": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_caller(acme, globex):
    a = acme.user("alice").post("/v1/_test/echo", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = acme.user("bob").post("/v1/_test/echo", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    c = globex.server().post("/v1/_test/echo", {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == c.status_code == 201
    assert len(echo_urls.executions) == 3


def test_a_failed_request_does_not_burn_the_key(acme):
    client = acme.server()
    assert client.post("/v1/_test/echo", {"n": -5}, format="json", HTTP_IDEMPOTENCY_KEY="k3").status_code == 400
    # A 4xx response is the answer for that body; a corrected body under the same key is a different request.
    retry = client.post("/v1/_test/echo", {"n": -5}, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert retry.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_execute_once(acme):
    results: list[int] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        from django.db import connection

        barrier.wait()
        response = acme.server().post(
            "/v1/_test/echo", {"n": 9, "slow": 0.3}, format="json", HTTP_IDEMPOTENCY_KEY="race"
        )
        results.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert echo_urls.executions == [9]
    assert results.count(201) >= 1
    assert set(results) <= {201, 409}
    replay = acme.server().post("/v1/_test/echo", {"n": 9, "slow": 0.3}, format="json", HTTP_IDEMPOTENCY_KEY="race")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
