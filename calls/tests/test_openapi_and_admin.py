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


def test_an_operator_removes_a_connected_participant_from_a_live_call(operator, ringing, livekit):
    from django.contrib.admin.models import LogEntry

    from calls.models import Call, CallParticipant
    from calls.services import call_apply_livekit_event
    from calls.tests.test_livekit_events import lk_event
    from scaiwave.models import Event

    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    bob = CallParticipant.objects.get(call_id=ringing, user__external_id="bob")
    url = "/admin/calls/callparticipant/"

    confirm = operator.post(url, {"action": "remove_from_call", "_selected_action": [bob.pk]})
    assert confirm.status_code == 200 and CallParticipant.objects.get(pk=bob.pk).left_at is None

    operator.post(url, {"action": "remove_from_call", "_selected_action": [bob.pk], "post": "yes"})

    bob.refresh_from_db()
    assert bob.left_at is not None and bob.leave_reason == "removed_by_operator"
    assert Call.objects.get(pk=ringing).status == "active"  # alice is still there
    left = Event.objects.filter(type="swp.call.participant_left").latest("seq")
    assert left.data["participant_id"] == "bob" and left.data["reason"] == "removed_by_operator"
    assert LogEntry.objects.filter(object_id=str(bob.pk)).exists()


def test_a_support_user_cannot_remove_call_participants(client, ringing, livekit):
    from django.contrib.auth.models import User

    from calls.models import CallParticipant
    from calls.services import call_apply_livekit_event
    from calls.tests.test_livekit_events import lk_event
    from scaiwave.admin_support import support_group_sync

    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    alice = CallParticipant.objects.get(call_id=ringing, user__external_id="alice")
    support = User.objects.create_user("support", password="pw", is_staff=True)
    support.groups.add(support_group_sync())
    client.force_login(support)
    page = client.get("/admin/calls/callparticipant/")
    assert page.status_code == 200 and b"Remove from the call" not in page.content
    client.post(
        "/admin/calls/callparticipant/", {"action": "remove_from_call", "_selected_action": [alice.pk], "post": "yes"}
    )
    alice.refresh_from_db()
    assert alice.left_at is None


def test_call_participants_and_timeline_entries_cannot_be_raw_deleted_in_the_admin(operator, standup, ringing):
    from calls.models import CallParticipant, TimelineEntry
    from calls.services import timeline_post

    entry = timeline_post(room=standup, kind="note", data={})
    participant = CallParticipant.objects.filter(call_id=ringing).first()
    assert participant is not None
    for url, pk, model in (
        ("/admin/calls/callparticipant/", participant.pk, CallParticipant),
        ("/admin/calls/timelineentry/", entry.pk, TimelineEntry),
    ):
        page = operator.get(url)
        assert b'value="delete_selected"' not in page.content, url
        operator.post(url, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})
        assert operator.get(f"{url}{pk}/delete/").status_code == 403, url
        assert model.objects.filter(pk=pk).exists(), url
