"""Malformed JSON has one code per surface, and document 000 reads JSON whatever Content-Type is declared."""

from __future__ import annotations

import re

import pytest

from scaiwave.tests.test_permission_matrix import api_routes

pytestmark = pytest.mark.django_db

BODY_ROUTES = [(r.pattern, m) for r in api_routes() for m in r.methods if m in ("post", "put", "patch")]

# What each document's clients look for: 000 has its SW_CALL_* codes, 002 says `validation_failed` for bad JSON,
# 001 and 003 name no code, so ours: the cause, not the field check.
SURFACES = [
    ("v1/calls/", "SW_CALL_INVALID_REQUEST"),
    ("api/calls", "validation_failed"),
    ("v1/live/", "malformed_request"),
    ("", "malformed_request"),
]


def _surface_code(pattern: str) -> str:
    return next(code for prefix, code in SURFACES if pattern.startswith(prefix))


def _path(pattern: str) -> str:
    return "/" + re.sub(r"<\w+>", "any-id", pattern)


@pytest.mark.parametrize(("pattern", "method"), BODY_ROUTES)
def test_malformed_json_has_its_surfaces_one_code(acme, pattern, method):
    codes = set()
    for client in (acme.server(), acme.user("alice")):
        response = getattr(client, method)(_path(pattern), b'{"name": ', content_type="application/json")
        if response.status_code == 400:
            codes.add(response.json()["code"])
    assert codes <= {_surface_code(pattern)}


def test_a_calls_body_labelled_as_a_form_is_read_as_json(acme):
    """The document's curl example: `-d '{...}'` without -H Content-Type is sent form-encoded."""
    alice = acme.user("alice")
    body = b'{"room_id": "no-such-room", "type": "audio"}'
    initiate = alice.post("/v1/calls/initiate", body, content_type="application/x-www-form-urlencoded")
    start = alice.post(
        "/v1/calls/call-nope/recording/start",
        b'{"audio": true, "video": true, "transcript": true}',
        content_type="application/x-www-form-urlencoded",
    )
    assert initiate.status_code == 404 and initiate.json()["code"] == "SW_CALL_ROOM_NOT_FOUND"
    assert start.status_code == 404 and start.json()["code"] == "SW_CALL_NOT_FOUND"


def test_a_calls_body_that_is_not_json_is_still_refused(acme):
    response = acme.user("alice").post(
        "/v1/calls/initiate", b"room_id=standup&type=audio", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415 and response["Content-Type"].startswith("application/problem+json")


def test_a_body_labelled_as_a_form_is_still_415_outside_document_000(acme):
    response = acme.server().post("/v1/rooms", b'{"name": "standup"}', content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
