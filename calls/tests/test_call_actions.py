"""POST /v1/calls/{call_id}/join|leave|reject|end and GET /v1/calls/{call_id}: permissions, errors, envelope."""

from __future__ import annotations

import pytest
from livekit import api as lk

from calls.models import Call, CallParticipant, TimelineEntry
from calls.tests.conftest import make_room
from scaiwave.models import Event

pytestmark = pytest.mark.django_db


def post(creds, sub: str, call_id: str, action: str):
    return creds.user(sub).post(f"/v1/calls/{call_id}/{action}")


def events(type_: str) -> list[Event]:
    return list(Event.objects.filter(type=type_).order_by("seq"))


# --- join ----------------------------------------------------------------------------------------


def test_join_returns_a_token_scoped_to_the_caller_and_the_calls_room(acme, ringing, livekit):
    response = post(acme, "bob", ringing, "join")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["call_id"] == ringing
    claims = lk.TokenVerifier(livekit.api_key, livekit.api_secret).verify(data["livekit_token"])
    assert claims.identity == "bob"
    assert claims.name == "Bob"
    assert claims.video.room == f"scaiwave-{ringing}"
    assert claims.video.room_join is True


def test_join_does_not_mark_the_participant_joined_before_livekit_says_so(acme, ringing):
    post(acme, "bob", ringing, "join")

    bob = CallParticipant.objects.get(call_id=ringing, user__external_id="bob")
    assert bob.token_issued_at is not None
    assert bob.joined_at is None
    assert Call.objects.get(pk=ringing).status == "ringing"
    state = acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]
    assert state["participants"] == []


def test_join_by_a_non_member_is_forbidden(acme, ringing):
    response = post(acme, "mallory", ringing, "join")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_join_of_another_tenants_call_is_not_found(globex, ringing):
    response = post(globex, "bob", ringing, "join")

    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_NOT_FOUND"


def test_join_of_an_unknown_call_is_not_found(acme, ringing):
    response = post(acme, "bob", "call-doesnotexist", "join")

    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_NOT_FOUND"


def test_join_of_an_ended_call_is_409(acme, ringing):
    post(acme, "alice", ringing, "end")

    response = post(acme, "bob", ringing, "join")

    assert response.status_code == 409
    assert response.json()["code"] == "SW_CALL_ENDED"


def test_join_with_the_server_key_is_forbidden(acme, ringing):
    response = acme.server().post(f"/v1/calls/{ringing}/join")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_join_when_livekit_credentials_are_missing_is_502(acme, ringing, settings):
    settings.LIVEKIT_API_SECRET = ""

    response = post(acme, "bob", ringing, "join")

    assert response.status_code == 502
    assert response.json()["code"] == "SW_CALL_LIVEKIT_UNREACHABLE"


# --- end -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sub", "allowed"), [("alice", True), ("dave", True), ("carol", False), ("bob", False)])
def test_end_is_allowed_to_the_initiator_or_power_50(acme, ringing, sub, allowed):
    response = post(acme, sub, ringing, "end")

    if allowed:
        assert response.status_code == 200
        assert response.json()["data"]["status"] == "cancelled"
    else:
        assert response.status_code == 403
        assert response.json()["code"] == "SW_CALL_FORBIDDEN"
        assert Call.objects.get(pk=ringing).status == "ringing"


def test_end_by_a_non_member_is_forbidden(acme, ringing):
    response = post(acme, "mallory", ringing, "end")

    assert response.status_code == 403


def test_end_by_another_tenant_is_not_found(globex, ringing):
    assert post(globex, "alice", ringing, "end").status_code == 404


def test_ending_a_ringing_call_cancels_it_and_stops_the_ring(acme, ringing, livekit):
    post(acme, "alice", ringing, "end")

    call = Call.objects.get(pk=ringing)
    assert call.status == "cancelled"
    assert call.end_reason == "cancelled"
    assert call.ended_at is not None
    cancelled = events("swp.call.ringing_cancelled")
    assert len(cancelled) == 1
    assert cancelled[0].data["reason"] == "cancelled"
    assert sorted(cancelled[0].user_ids) == sorted(acme.user_row(s).pk for s in ("bob", "carol", "dave"))
    ended = events("swp.call.ended")[0]
    assert ended.data["status"] == "cancelled"
    assert ended.data["ended_by"] == "alice"
    assert len(ended.user_ids) == 4


def test_ending_an_ended_call_is_409(acme, ringing):
    post(acme, "alice", ringing, "end")

    response = post(acme, "dave", ringing, "end")

    assert response.status_code == 409
    assert response.json()["code"] == "SW_CALL_ENDED"
    assert response.json()["call_status"] == "cancelled"


# --- reject --------------------------------------------------------------------------------------


def test_reject_records_the_decline_and_stops_the_users_other_devices(acme, ringing):
    response = post(acme, "bob", ringing, "reject")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "ringing"
    assert CallParticipant.objects.get(call_id=ringing, user__external_id="bob").rejected_at is not None
    stop = events("swp.call.ringing_cancelled")
    assert [e.user_ids for e in stop] == [[acme.user_row("bob").pk]]


def test_when_every_callee_rejects_the_call_is_rejected_and_posted_to_the_timeline(acme, ringing):
    for sub in ("bob", "carol", "dave"):
        assert post(acme, sub, ringing, "reject").status_code == 200

    call = Call.objects.get(pk=ringing)
    assert call.status == "rejected"
    entry = TimelineEntry.objects.get(call=call)
    assert entry.kind == "rejected_call"
    assert sorted(entry.data["rejected_by"]) == ["bob", "carol", "dave"]
    ended = events("swp.call.ended")[-1]
    assert ended.data["status"] == "rejected"
    assert acme.user_row("alice").pk in ended.user_ids


def test_the_initiator_cannot_reject_their_own_call(acme, ringing):
    response = post(acme, "alice", ringing, "reject")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_reject_by_a_non_member_is_forbidden(acme, ringing):
    assert post(acme, "mallory", ringing, "reject").status_code == 403


def test_reject_of_an_ended_call_is_409(acme, ringing):
    post(acme, "alice", ringing, "end")

    assert post(acme, "bob", ringing, "reject").json()["code"] == "SW_CALL_ENDED"


def test_reject_of_another_tenants_call_is_not_found(globex, ringing):
    assert post(globex, "bob", ringing, "reject").json()["code"] == "SW_CALL_NOT_FOUND"


# --- leave ---------------------------------------------------------------------------------------


def test_the_initiator_leaving_before_an_answer_cancels_the_call(acme, ringing):
    response = post(acme, "alice", ringing, "leave")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    assert Call.objects.get(pk=ringing).end_reason == "initiator_left"


def test_a_callee_leaving_before_answering_declines(acme, ringing):
    post(acme, "bob", ringing, "leave")

    assert CallParticipant.objects.get(call_id=ringing, user__external_id="bob").rejected_at is not None
    assert Call.objects.get(pk=ringing).status == "ringing"


def test_leave_by_someone_not_in_the_call_is_forbidden(acme, ringing):
    response = post(acme, "mallory", ringing, "leave")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_leave_of_an_ended_call_is_409(acme, ringing):
    post(acme, "alice", ringing, "end")

    assert post(acme, "bob", ringing, "leave").json()["code"] == "SW_CALL_ENDED"


def test_leave_of_another_tenants_call_is_not_found(globex, ringing):
    assert post(globex, "alice", ringing, "leave").status_code == 404


# --- state ---------------------------------------------------------------------------------------


def test_state_has_exactly_the_documented_shape(acme, ringing):
    response = acme.user("bob").get(f"/v1/calls/{ringing}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data"}
    data = body["data"]
    assert set(data) == {
        "id",
        "room_id",
        "type",
        "status",
        "started_at",
        "ended_at",
        "initiator_id",
        "participants",
        "recordings",
    }
    assert data["id"] == ringing
    assert data["room_id"] == "standup"
    assert data["type"] == "audio"
    assert data["status"] == "ringing"
    assert data["started_at"] is None
    assert data["ended_at"] is None
    assert data["initiator_id"] == "alice"
    assert data["recordings"] == []


def test_state_for_a_non_member_is_forbidden(acme, ringing):
    response = acme.user("mallory").get(f"/v1/calls/{ringing}")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_state_for_a_member_removed_from_the_room_is_forbidden(acme, standup, ringing):
    from rooms.services import member_remove

    assert acme.user("bob").get(f"/v1/calls/{ringing}").status_code == 200
    member_remove(room=standup, external_id="bob", actor="server")

    response = acme.user("bob").get(f"/v1/calls/{ringing}")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"


def test_state_of_another_tenants_call_is_not_found(globex, ringing):
    make_room(globex, "standup", {"alice": 100})

    response = globex.user("alice").get(f"/v1/calls/{ringing}")

    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_NOT_FOUND"


def test_state_without_credentials_is_401(ringing):
    from rest_framework.test import APIClient

    response = APIClient().get(f"/v1/calls/{ringing}")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_state_lists_the_calls_finished_recordings_as_media_references(acme, standup, ringing):
    from recordings.models import MediaEntry, Recording

    recording = Recording.objects.create(
        tenant=acme.tenant,
        room=standup,
        call_id=ringing,
        livekit_room=f"scaiwave-{ringing}",
        storage_key=f"recordings/{ringing}/20261121T120000.mp4",
    )
    MediaEntry.objects.create(
        tenant=acme.tenant,
        key=recording.storage_key,
        content_type="video/mp4",
        size=1234,
        duration_seconds=2.0,
        sha256="0" * 64,
        source="egress",
        recording=recording,
    )

    recordings = acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]["recordings"]

    assert len(recordings) == 1
    assert recordings[0]["recordingId"] == recording.pk
    assert recordings[0]["contentType"] == "video/mp4"
    assert recordings[0]["url"]
