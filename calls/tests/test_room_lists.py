"""GET /v1/rooms/{room_id}/calls and GET /v1/rooms/{room_id}/timeline"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call
from calls.services import timeline_post
from calls.tasks import expire_ringing_calls
from calls.tests.conftest import initiate, make_room

pytestmark = pytest.mark.django_db


def _three_calls(acme):
    """A cancelled, a missed and a ringing call in standup, oldest first."""
    ids = []
    first = initiate(acme).json()["data"]["call_id"]
    acme.user("alice").post(f"/v1/calls/{first}/end")
    second = initiate(acme).json()["data"]["call_id"]
    Call.objects.filter(pk=second).update(ring_expires_at=timezone.now() - timedelta(seconds=1))
    expire_ringing_calls()
    third = initiate(acme).json()["data"]["call_id"]
    ids.extend([first, second, third])
    return ids


def test_a_member_sees_the_rooms_calls_newest_first(acme, standup, livekit):
    first, second, third = _three_calls(acme)

    response = acme.user("bob").get("/v1/rooms/standup/calls")

    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["data"]] == [third, second, first]
    assert [c["status"] for c in body["data"]] == ["ringing", "missed", "cancelled"]
    assert body["nextCursor"] is None
    assert {"id", "room_id", "status", "participants", "created_at", "end_reason"} <= set(body["data"][0])


def test_calls_can_be_filtered_by_status(acme, standup, livekit):
    _, missed, _ = _three_calls(acme)

    response = acme.user("bob").get("/v1/rooms/standup/calls?status=missed")

    assert [c["id"] for c in response.json()["data"]] == [missed]


def test_calls_are_cursor_paginated(acme, standup, livekit):
    first, second, third = _three_calls(acme)
    client = acme.server()

    page1 = client.get("/v1/rooms/standup/calls?limit=2").json()
    page2 = client.get(f"/v1/rooms/standup/calls?limit=2&cursor={page1['nextCursor']}").json()

    assert [c["id"] for c in page1["data"]] == [third, second]
    assert [c["id"] for c in page2["data"]] == [first]
    assert page2["nextCursor"] is None


def test_an_unknown_status_filter_is_a_400(acme, standup):
    response = acme.server().get("/v1/rooms/standup/calls?status=sleeping")

    assert response.status_code == 400
    assert response.json()["code"] == "SW_CALL_INVALID_REQUEST"


def test_a_bad_cursor_is_a_400(acme, standup):
    response = acme.server().get("/v1/rooms/standup/calls?cursor=%%%")

    assert response.status_code == 400


@pytest.mark.parametrize("path", ["calls", "timeline"])
def test_a_non_member_may_not_list(acme, standup, path):
    response = acme.user("mallory").get(f"/v1/rooms/standup/{path}")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


@pytest.mark.parametrize("path", ["calls", "timeline"])
def test_another_tenant_does_not_see_the_room(acme, globex, standup, path):
    make_room(globex, "elsewhere", {"gina": 0})

    assert globex.server().get(f"/v1/rooms/standup/{path}").status_code == 404
    response = globex.user("gina").get(f"/v1/rooms/standup/{path}")
    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_ROOM_NOT_FOUND"


def test_the_timeline_shows_missed_calls_and_posted_entries_newest_first(acme, standup, livekit):
    _, missed, _ = _three_calls(acme)
    timeline_post(room=standup, kind="transcript", data={"text": "hello"})

    response = acme.user("carol").get("/v1/rooms/standup/timeline")

    assert response.status_code == 200
    entries = response.json()["data"]
    assert [e["kind"] for e in entries] == ["transcript", "missed_call"]
    assert entries[1]["call_id"] == missed
    assert entries[0]["call_id"] is None
    assert set(entries[0]) == {"id", "kind", "call_id", "data", "created_at"}


def test_the_timeline_is_cursor_paginated(acme, standup):
    for n in range(3):
        timeline_post(room=standup, kind="note", data={"n": n})

    page1 = acme.server().get("/v1/rooms/standup/timeline?limit=2").json()
    page2 = acme.server().get(f"/v1/rooms/standup/timeline?limit=2&cursor={page1['nextCursor']}").json()

    assert [e["data"]["n"] for e in page1["data"] + page2["data"]] == [2, 1, 0]
