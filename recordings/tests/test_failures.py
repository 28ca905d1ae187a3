"""Failure paths, through the emulator's fault switches: nothing is dropped silently."""

from __future__ import annotations

import time

import pytest

from recordings import services
from recordings.models import MediaEntry, Recording, RecordingEgress
from recordings.tests.conftest import join_and_talk, wait_for_status
from scaiwave.models import Event


def _start_room_recording(acme, livekit, standup) -> tuple[str, str]:
    join_and_talk(livekit, standup.livekit_name)
    started = acme.server().post("/v1/rooms/standup/recording/start")
    assert started.status_code == 201, started.content
    return started.json()["recordingId"], started.json()["egressId"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_egress_fails_the_recording_with_livekits_reason_and_an_event(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    recording_id, egress_id = _start_room_recording(acme, livekit, standup)
    wait_for_status(recording_id, Recording.Status.RECORDING)

    livekit.control.egress_fail(egress_id, "pipeline crashed: out of memory")

    recording = wait_for_status(recording_id, Recording.Status.FAILED)
    assert recording.failure_reason == "pipeline crashed: out of memory"
    event = Event.objects.get(tenant=acme.tenant, type="recording_failed")
    assert event.data["recordingId"] == recording_id
    assert event.data["reason"] == "pipeline crashed: out of memory"
    assert event.room_key == str(standup.pk)
    detail = acme.server().get(f"/v1/recordings/{recording_id}").json()
    assert detail["status"] == "failed" and detail["failureReason"] == "pipeline crashed: out of memory"
    # No room recording is active any more: a new one may start.
    assert acme.server().get("/v1/rooms/standup/recording").json()["isRecording"] is False


@pytest.mark.django_db(transaction=True)
def test_a_failed_storage_write_fails_the_recording_with_the_upload_error(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    livekit.control.faults(storage_fail=True)
    recording_id, _ = _start_room_recording(acme, livekit, standup)
    wait_for_status(recording_id, Recording.Status.RECORDING)
    time.sleep(0.5)
    assert acme.server().post("/v1/rooms/standup/recording/stop").status_code == 200

    recording = wait_for_status(recording_id, Recording.Status.FAILED)
    assert "failed to upload file" in recording.failure_reason
    assert not MediaEntry.objects.filter(recording=recording).exists()
    assert Event.objects.filter(tenant=acme.tenant, type="recording_failed").exists()


@pytest.mark.django_db(transaction=True)
def test_lost_egress_webhooks_are_repaired_by_reconciliation(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    recording_id, egress_id = _start_room_recording(acme, livekit, standup)
    wait_for_status(recording_id, Recording.Status.RECORDING)
    livekit.control.faults(webhook={"drop_rate": 1.0})
    time.sleep(0.5)
    assert acme.server().post("/v1/rooms/standup/recording/stop").status_code == 200
    livekit.control.wait_for_egress(egress_id)
    time.sleep(0.3)
    assert Recording.objects.get(pk=recording_id).status == Recording.Status.STOPPING  # nothing arrived

    services.recordings_reconcile_egress(older_than_seconds=0)

    recording = wait_for_status(recording_id, Recording.Status.READY)
    # The composite's file (a room recording also records each speaker's track beside it).
    assert MediaEntry.objects.get(recording=recording, egress__egress_id=egress_id).size > 0
    assert RecordingEgress.objects.get(egress_id=egress_id).status == RecordingEgress.Status.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_reconciliation_fails_an_egress_livekit_has_forgotten(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    recording_id, _ = _start_room_recording(acme, livekit, standup)
    wait_for_status(recording_id, Recording.Status.RECORDING)
    livekit.control.reset()  # LiveKit restarted: the egress is gone, and no webhook will say so

    services.recordings_reconcile_egress(older_than_seconds=0)

    recording = Recording.objects.get(pk=recording_id)
    assert recording.status == Recording.Status.FAILED
    assert recording.failure_reason == "LiveKit no longer knows this egress"


@pytest.mark.django_db(transaction=True)
def test_a_limit_reached_egress_keeps_its_file_and_says_why(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage
):
    recording_id, egress_id = _start_room_recording(acme, livekit, standup)
    wait_for_status(recording_id, Recording.Status.RECORDING)
    time.sleep(0.5)
    livekit.control.egress_limit(egress_id)

    recording = wait_for_status(recording_id, Recording.Status.LIMIT_REACHED)
    assert recording.failure_reason == "Session limit reached"
    entry = services_wait_for_media(recording_id)
    assert entry.size > 0


def services_wait_for_media(recording_id: str) -> MediaEntry:
    from recordings.tests.conftest import wait_for

    return wait_for(lambda: MediaEntry.objects.filter(recording_id=recording_id).first())


@pytest.mark.django_db
def test_livekit_unreachable_on_start_is_502_and_leaves_nothing_behind(acme, standup, livekit_down):
    response = acme.server().post("/v1/rooms/standup/recording/start")
    assert response.status_code == 502
    assert response.json()["code"] == "livekit_unreachable"
    assert not Recording.objects.exists() and not RecordingEgress.objects.exists()


@pytest.mark.django_db
def test_livekit_dropping_connections_on_a_call_recording_start_is_sw_call_livekit_unreachable(
    acme, standup, livekit, settings
):
    dave = acme.user("dave")
    call_id = dave.post("/v1/calls/initiate", {"room_id": "standup", "type": "audio"}, format="json").json()["data"][
        "call_id"
    ]
    settings.LIVEKIT_TIMEOUT = 1.0
    livekit.control.faults(mode="unreachable")

    response = dave.post(f"/v1/calls/{call_id}/recording/start", {"audio": True}, format="json")

    assert response.status_code == 502
    assert response.json()["code"] == "SW_CALL_LIVEKIT_UNREACHABLE"
    assert not Recording.objects.exists()
    livekit.control.faults(mode="ok")
