"""Document 000's recording endpoints: who may record, the tenant setting, idempotency, stop twice, call end."""

from __future__ import annotations

import pytest

from recordings.models import Recording, RecordingEgress
from recordings.tests.conftest import join_and_talk, wait_for_status


def initiate(creds, sub: str = "dave") -> str:
    response = creds.user(sub).post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["data"]["call_id"])


@pytest.fixture
def call_id(acme, standup, livekit) -> str:
    return initiate(acme)


@pytest.mark.django_db
def test_a_member_with_power_50_starts_a_call_recording(acme, call_id):
    response = acme.user("dave").post(f"/v1/calls/{call_id}/recording/start", {"video": False}, format="json")

    assert response.status_code == 201
    data = response.json()["data"]
    assert data["status"] == "starting" and data["callId"] == call_id
    assert data["storageKey"].startswith(f"recordings/{call_id}/") and data["storageKey"].endswith(".ogg")
    assert data["egressId"].startswith("EG_")
    recording = Recording.objects.get(pk=data["id"])
    assert recording.requested_by == acme.user_row("dave") and recording.audio and not recording.video


@pytest.mark.django_db
def test_a_member_below_power_50_may_not_record(acme, call_id):
    response = acme.user("alice").post(f"/v1/calls/{call_id}/recording/start", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_FORBIDDEN"
    assert not Recording.objects.exists()


@pytest.mark.django_db
def test_an_outsider_may_not_record_or_list(acme, call_id):
    acme.user_row("mallory")
    outsider = acme.user("mallory")
    assert outsider.post(f"/v1/calls/{call_id}/recording/start", {}, format="json").json()["code"] == (
        "SW_CALL_FORBIDDEN"
    )
    assert outsider.get(f"/v1/calls/{call_id}/recordings").status_code == 403


@pytest.mark.django_db
def test_another_tenants_call_is_not_found(acme, globex, call_id):
    response = globex.user("dave").post(f"/v1/calls/{call_id}/recording/start", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_NOT_FOUND"


@pytest.mark.django_db
def test_the_server_key_is_not_a_user_on_the_calls_surface(acme, call_id):
    assert acme.server().post(f"/v1/calls/{call_id}/recording/start", {}, format="json").status_code == 403


@pytest.mark.django_db
def test_a_tenant_with_recordings_disabled_gets_sw_call_recording_disabled(acme, call_id):
    acme.tenant.recordings_enabled = False
    acme.tenant.save()

    response = acme.user("dave").post(f"/v1/calls/{call_id}/recording/start", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "SW_CALL_RECORDING_DISABLED"
    assert not Recording.objects.exists()


@pytest.mark.django_db
def test_recording_neither_audio_nor_video_is_a_bad_request(acme, call_id):
    response = acme.user("dave").post(
        f"/v1/calls/{call_id}/recording/start", {"audio": False, "video": False}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "SW_CALL_INVALID_REQUEST"


@pytest.mark.django_db
def test_an_ended_call_cannot_be_recorded(acme, call_id):
    assert acme.user("dave").post(f"/v1/calls/{call_id}/end").status_code == 200

    response = acme.user("dave").post(f"/v1/calls/{call_id}/recording/start", {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "SW_CALL_ENDED"


@pytest.mark.django_db
def test_starting_while_starting_returns_the_same_recording(acme, call_id):
    dave = acme.user("dave")
    first = dave.post(f"/v1/calls/{call_id}/recording/start", {}, format="json")
    second = dave.post(f"/v1/calls/{call_id}/recording/start", {}, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert Recording.objects.count() == 1 and RecordingEgress.objects.count() == 1


@pytest.mark.django_db
def test_stopping_twice_is_safe(acme, call_id, slow_egress):
    dave = acme.user("dave")
    recording_id = dave.post(f"/v1/calls/{call_id}/recording/start", {}, format="json").json()["data"]["id"]

    first = dave.post(f"/v1/calls/{call_id}/recording/stop")
    second = dave.post(f"/v1/calls/{call_id}/recording/stop")

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["data"]["id"] == second.json()["data"]["id"] == recording_id
    # Stopped before LiveKit began writing: LiveKit aborts it, with its reason; it was announced as stopped first.
    assert second.json()["data"]["status"] == "aborted"
    assert second.json()["data"]["failureReason"] == "Stop called before pipeline could start"


@pytest.mark.django_db
def test_stopping_a_call_that_was_never_recorded_is_not_found(acme, call_id):
    response = acme.user("dave").post(f"/v1/calls/{call_id}/recording/stop")
    assert response.status_code == 404
    assert response.json()["code"] == "SW_CALL_RECORDING_NOT_FOUND"


@pytest.mark.django_db
def test_a_member_lists_no_recordings_before_any_is_ready(acme, call_id):
    response = acme.user("alice").get(f"/v1/calls/{call_id}/recordings")
    assert response.status_code == 200 and response.json() == {"data": []}


@pytest.mark.django_db(transaction=True)
def test_ending_the_call_while_recording_finishes_the_recording(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    call_id = initiate(acme)
    join_and_talk(livekit, f"scaiwave-{call_id}")
    dave = acme.user("dave")
    recording_id = dave.post(f"/v1/calls/{call_id}/recording/start", {}, format="json").json()["data"]["id"]
    wait_for_status(recording_id, Recording.Status.RECORDING)

    assert dave.post(f"/v1/calls/{call_id}/end").status_code == 200

    recording = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED)
    assert recording.status == Recording.Status.READY, recording.failure_reason
    [reference] = dave.get(f"/v1/calls/{call_id}/recordings").json()["data"]
    assert reference["recordingId"] == recording_id and reference["size"] > 0
    # The call's state lists it too.
    assert dave.get(f"/v1/calls/{call_id}").json()["data"]["recordings"][0]["id"] == reference["id"]
