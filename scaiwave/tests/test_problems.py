"""The RFC 9457 problem format for every status the API uses."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

REQUIRED = {"type", "title", "status", "detail", "code", "error", "message"}


@pytest.fixture(autouse=True)
def probe_urls(settings):
    settings.ROOT_URLCONF = "scaiwave.tests.echo_urls"


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= REQUIRED, body
    assert body["status"] == status
    assert body["error"] == body["code"]
    assert body["message"] == body["detail"]
    if code:
        assert body["code"] == code
    return body


def test_400_lists_field_errors(acme):
    body = assert_problem(acme.server().post("/v1/_test/echo", {"n": -1}, format="json"), 400, "validation_failed")
    assert "n" in body["errors"]


def test_400_for_malformed_json(acme):
    response = acme.server().post("/v1/_test/echo", "{not json", content_type="application/json")
    assert_problem(response, 400, "malformed_request")


def test_401_without_credentials():
    assert_problem(APIClient().post("/v1/_test/echo", {"n": 1}, format="json"), 401, "auth_invalid")


def test_403_when_not_allowed(acme):
    assert_problem(acme.user("bob").get("/v1/health"), 403, "forbidden")


def test_404_for_unknown_route_is_a_problem_too(acme):
    assert_problem(acme.server().get("/v1/no-such-thing"), 404, "not_found")


def test_405_for_wrong_method(acme):
    assert_problem(acme.server().delete("/v1/health"), 405, "method_not_allowed")


@pytest.mark.parametrize("status", [409, 422, 502, 503])
def test_service_raised_problems_keep_their_status_and_code(acme, status):
    assert_problem(acme.server().get(f"/v1/_test/problem/{status}"), status, f"probe_{status}")


def test_413_when_body_exceeds_the_limit(acme, settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = acme.server().post("/v1/_test/echo", {"n": 1, "pad": "x" * 4096}, format="json")
    assert_problem(response, 413, "payload_too_large")


def test_415_for_unsupported_content_type(acme):
    response = acme.server().post("/v1/_test/echo", "n=1", content_type="text/plain")
    assert_problem(response, 415, "unsupported_media_type")


def test_429_with_retry_after(acme):
    client = acme.server()
    assert client.get("/v1/_test/throttled").status_code == 200
    assert client.get("/v1/_test/throttled").status_code == 200
    response = client.get("/v1/_test/throttled")
    assert_problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


def test_every_response_carries_a_request_id(acme):
    response = acme.server().get("/v1/health")
    assert len(response["X-Request-Id"]) >= 16
    echoed = acme.server().get("/v1/health", HTTP_X_REQUEST_ID="trace-123")
    assert echoed["X-Request-Id"] == "trace-123"


def test_a_crash_is_a_500_problem_without_a_stack_trace(acme, monkeypatch):
    from scaiwave.tests import echo_urls

    def explode(self, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(echo_urls.ThrottledView, "get", explode)
    client = acme.server()
    client.raise_request_exception = False
    response = client.get("/v1/_test/throttled")
    body = assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in body["detail"]


def test_the_per_key_rate_limit_applies_to_real_endpoints(acme, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"server": "3/min", "user": "3/min"},
    }
    client = acme.server()
    statuses = [client.get("/v1/health").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_rate_limits_are_counted_per_tenant(acme, globex, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"server": "1/min", "user": "1/min"},
    }
    assert acme.server().get("/v1/health").status_code == 200
    assert globex.server().get("/v1/health").status_code == 200
    assert acme.server().get("/v1/health").status_code == 429


def test_high_limits_count_in_batches_without_losing_hits(settings):
    """Above a few thousand a minute, hits reach the shared counter in batches: none is lost."""
    from django.core.cache import cache

    from scaiwave.api.throttling import _LocalTally

    tally = _LocalTally()
    bucket = "throttle:test:batching"
    cache.delete(bucket)
    seen = [tally.hit(bucket, ttl=60, batch=50) for _ in range(120)]
    assert seen == list(range(1, 121))  # the local view never undercounts
    pending, _, _ = tally.buckets[bucket]
    shared = int(cache.get(bucket))
    assert shared + pending == 120  # flushed plus not yet flushed: every hit accounted for
    assert pending < 50 and shared >= 70


def test_each_batch_is_handed_to_one_caller_and_hits_meanwhile_go_with_the_next(settings):
    """count() never does I/O: rooms.token_asgi counts on its event loop and sends only handed-out batches
    to Redis from a thread, one round trip per batch however many requests arrive meanwhile."""
    from django.core.cache import cache

    from scaiwave.api.throttling import _LocalTally

    tally = _LocalTally()
    bucket = "throttle:test:batch-handout"
    cache.delete(bucket)
    assert tally.count(bucket, batch=3) == (1, 1)  # never flushed: the first hit goes out at once
    assert [tally.count(bucket, batch=3) for _ in range(4)] == [(2, 0), (3, 0), (4, 0), (5, 0)]  # still in flight

    assert tally.flush(bucket, 1, ttl=60) == 5
    assert tally.count(bucket, batch=3) == (6, 5)  # the four that waited, and this one
    assert tally.flush(bucket, 5, ttl=60) == 6 == int(cache.get(bucket))


def test_other_hits_are_counted_while_one_waits_on_the_shared_counter(monkeypatch):
    """The round trip to Redis runs outside the tally's lock, so a slow Redis delays one request, not all."""
    import threading
    import time

    from scaiwave.api import throttling

    shared = {"total": 0}
    entered, release = threading.Event(), threading.Event()

    def slow_add_hits(bucket: str, hits: int, *, ttl: int) -> int:
        if not entered.is_set():
            entered.set()
            release.wait(5)
        shared["total"] += hits
        return shared["total"]

    monkeypatch.setattr(throttling, "_add_hits", slow_add_hits)
    tally = throttling._LocalTally()
    flusher = threading.Thread(target=tally.hit, args=("bucket",), kwargs={"ttl": 60, "batch": 1})
    flusher.start()
    assert entered.wait(5)

    started = time.monotonic()
    counts = [tally.hit("bucket", ttl=60, batch=1) for _ in range(3)]

    assert time.monotonic() - started < 1
    assert counts == [2, 3, 4]  # the hit in flight is part of the local view
    release.set()
    flusher.join(5)
    assert tally.hit("bucket", ttl=60, batch=1) == 5 == shared["total"]
