"""The calls surface in the OpenAPI document, and the admin pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PATHS = {
    "/v1/calls/initiate": "post",
    "/v1/calls/{call_id}/join": "post",
    "/v1/calls/{call_id}/leave": "post",
    "/v1/calls/{call_id}/reject": "post",
    "/v1/calls/{call_id}/end": "post",
    "/v1/calls/{call_id}": "get",
    "/v1/rooms/{room_id}/calls": "get",
    "/v1/rooms/{room_id}/timeline": "get",
}


def test_every_calls_endpoint_is_in_the_openapi_with_its_problem_codes():
    response = APIClient().get("/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    for path, method in PATHS.items():
        operation = schema["paths"][path][method]
        assert "200" in operation["responses"] or "201" in operation["responses"], path
        assert "403" in operation["responses"], path
    initiate = schema["paths"]["/v1/calls/initiate"]["post"]["responses"]
    assert {"400", "404", "409", "502"} <= set(initiate)
    assert "409" in schema["paths"]["/v1/calls/{call_id}/end"]["post"]["responses"]


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(user)
    return client


def test_the_call_admin_lists_and_shows_calls(operator, ringing):
    assert operator.get("/admin/calls/call/").status_code == 200
    page = operator.get(f"/admin/calls/call/{ringing}/change/")
    assert page.status_code == 200
    assert b"ringing" in page.content


def test_the_admin_action_ends_calls_through_the_service(operator, ringing):
    from calls.models import Call
    from scaiwave.models import Event

    confirm = operator.post("/admin/calls/call/", {"action": "end_calls", "_selected_action": [ringing]})
    assert confirm.status_code == 200  # the confirmation page; nothing ended yet
    assert Call.objects.get(pk=ringing).status == "ringing"

    response = operator.post(
        "/admin/calls/call/", {"action": "end_calls", "_selected_action": [ringing], "post": "yes"}, follow=True
    )

    assert response.status_code == 200
    call = Call.objects.get(pk=ringing)
    assert call.status == "cancelled"
    assert call.end_reason == "ended_by_operator"
    assert Event.objects.filter(type="swp.call.ended").exists()


def test_the_timeline_admin_lists_entries(operator, standup):
    from calls.services import timeline_post

    timeline_post(room=standup, kind="note", data={})
    assert operator.get("/admin/calls/timelineentry/").status_code == 200
