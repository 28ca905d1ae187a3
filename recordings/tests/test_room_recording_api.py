"""Document 001's room recording endpoints (X-API-Key)."""

from __future__ import annotations

import re

import pytest

from recordings.models import Recording
from scaiwave.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_standup(standup, livekit):
    """Someone is in the room on LiveKit, so there is something to record."""
    livekit.control.connect(livekit.token("alice", standup.livekit_name, can_publish=True))
    return standup


def test_start_answers_201_with_the_egress_and_emits_recording_started(acme, live_standup):
    response = acme.server().post("/v1/rooms/standup/recording/start")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "recording" and body["roomId"] == "standup"
    assert body["egressId"].startswith("EG_") and body["startedAt"].endswith("Z")
    assert body["recordingId"].startswith("rec_")
    event = Event.objects.get(tenant=acme.tenant, type="recording_started")
    assert event.data["egressId"] == body["egressId"] and event.room_key == str(live_standup.pk)


def test_start_while_recording_answers_200_already_recording_with_the_same_egress(acme, live_standup):
    first = acme.server().post("/v1/rooms/standup/recording/start").json()
    again = acme.server().post("/v1/rooms/standup/recording/start")

    assert again.status_code == 200
    assert again.json()["status"] == "already_recording"
    assert again.json()["egressId"] == first["egressId"]
    assert Recording.objects.count() == 1


def test_status_follows_start_and_stop(acme, live_standup):
    server = acme.server()
    assert server.get("/v1/rooms/standup/recording").json() == {
        "isRecording": False,
        "egressId": None,
        "startedAt": None,
        "recordingId": None,
    }
    started = server.post("/v1/rooms/standup/recording/start").json()
    status = server.get("/v1/rooms/standup/recording").json()
    assert status["isRecording"] is True and status["egressId"] == started["egressId"]

    stopped = server.post("/v1/rooms/standup/recording/stop")

    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped" and stopped.json()["stoppedAt"].endswith("Z")
    assert server.get("/v1/rooms/standup/recording").json()["isRecording"] is False


def test_stop_without_a_running_recording_is_404_and_stopping_twice_is_too(acme, live_standup):
    server = acme.server()
    assert server.post("/v1/rooms/standup/recording/stop").status_code == 404
    server.post("/v1/rooms/standup/recording/start")
    assert server.post("/v1/rooms/standup/recording/stop").status_code == 200
    second = server.post("/v1/rooms/standup/recording/stop")
    assert second.status_code == 404
    assert second.headers["Content-Type"] == "application/problem+json"
    assert second.json()["code"] == "recording_not_running"


def test_an_unknown_room_is_404(acme, livekit):
    response = acme.server().post("/v1/rooms/nowhere/recording/start")
    assert response.status_code == 404 and response.json()["code"] == "room_not_found"


def test_another_tenants_room_is_404(acme, globex, live_standup):
    assert globex.server().post("/v1/rooms/standup/recording/start").status_code == 404
    assert not Recording.objects.exists()


def test_a_room_nobody_joined_on_livekit_cannot_be_recorded(acme, standup, livekit):
    response = acme.server().post("/v1/rooms/standup/recording/start")
    assert response.status_code == 409 and response.json()["code"] == "room_not_live"
    assert not Recording.objects.exists()


def test_recordings_disabled_for_the_tenant_is_403(acme, live_standup):
    acme.tenant.recordings_enabled = False
    acme.tenant.save()
    response = acme.server().post("/v1/rooms/standup/recording/start")
    assert response.status_code == 403 and response.json()["code"] == "recordings_disabled"


def test_these_endpoints_need_the_server_key(acme, live_standup):
    from rest_framework.test import APIClient

    assert APIClient().post("/v1/rooms/standup/recording/start").status_code == 401
    assert acme.user("dave").post("/v1/rooms/standup/recording/start").status_code == 403
    assert acme.user("dave").get("/v1/rooms/standup/recording").status_code == 403


def test_closing_the_room_stops_its_recording(acme, live_standup):
    from recordings.services import recordings_stop_for_room

    recording_id = acme.server().post("/v1/rooms/standup/recording/start").json()["recordingId"]

    recordings_stop_for_room(live_standup)

    recording = Recording.objects.get(pk=recording_id)
    # Aborted if the stop beat LiveKit's start (the usual case), stopping if egress was already writing.
    assert recording.status in (Recording.Status.ABORTED, Recording.Status.STOPPING)
    from livekit.protocol import egress as lk_egress

    from rooms import livekit_gateway

    [info] = livekit_gateway.egress_list(egress_id=recording.egresses.get().egress_id)
    assert info.status in (
        lk_egress.EgressStatus.EGRESS_ABORTED,
        lk_egress.EgressStatus.EGRESS_ENDING,
        lk_egress.EgressStatus.EGRESS_COMPLETE,
    )


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_make_one_recording(acme, standup, livekit):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    livekit.control.connect(livekit.token("alice", standup.livekit_name, can_publish=True))

    def start() -> tuple[int, str]:
        try:
            response = acme.server().post("/v1/rooms/standup/recording/start")
            return response.status_code, response.json()["egressId"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(lambda _: start(), range(2)))

    assert [status for status, _ in results] == [200, 201]
    assert results[0][1] == results[1][1]
    assert Recording.objects.count() == 1
    assert len(livekit.control.state()["egress"]) == 1


MS_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"


def test_a_recording_stopped_before_it_became_active_is_announced_as_stopped(acme, live_standup, slow_egress):
    server = acme.server()
    started = server.post("/v1/rooms/standup/recording/start").json()

    stopped = server.post("/v1/rooms/standup/recording/stop")

    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    kinds = list(
        Event.objects.filter(tenant=acme.tenant, type__startswith="recording_")
        .order_by("seq")
        .values_list("type", flat=True)
    )
    assert kinds[:2] == ["recording_started", "recording_stopped"], kinds
    stopped_event = Event.objects.get(tenant=acme.tenant, type="recording_stopped")
    assert stopped_event.data["recordingId"] == started["recordingId"]
    assert server.get("/v1/rooms/standup/recording").json()["isRecording"] is False


def test_times_have_one_format_and_start_and_get_agree_on_started_at(acme, live_standup, slow_egress):
    server = acme.server()

    started = server.post("/v1/rooms/standup/recording/start").json()
    status = server.get("/v1/rooms/standup/recording").json()
    detail = server.get(f"/v1/recordings/{started['recordingId']}").json()
    event = Event.objects.get(tenant=acme.tenant, type="recording_started")

    assert re.fullmatch(MS_UTC, started["startedAt"]), started
    assert status["startedAt"] == started["startedAt"]
    assert detail["startedAt"] == started["startedAt"]
    assert event.data["startedAt"] == started["startedAt"]
    assert re.fullmatch(MS_UTC, detail["createdAt"]), detail

    stopped = server.post("/v1/rooms/standup/recording/stop").json()
    detail = server.get(f"/v1/recordings/{started['recordingId']}").json()
    assert re.fullmatch(MS_UTC, stopped["stoppedAt"]), stopped
    assert detail["stoppedAt"] == stopped["stoppedAt"]
    assert detail["startedAt"] == started["startedAt"]
    event = Event.objects.get(tenant=acme.tenant, type="recording_stopped")
    assert event.data["stoppedAt"] == stopped["stoppedAt"]


def test_a_room_recording_records_each_speakers_audio_under_their_token_name(acme, standup, livekit):
    # POST /v1/recordings/{id}/transcribe names voices by track sid: a room recording must have a track per voice.
    livekit.control.connect(livekit.token("alice", standup.livekit_name, can_publish=True, name="Alice Token"))
    published = livekit.control.publish(standup.livekit_name, "alice", tone={"frequency": 440, "seconds": 5})

    response = acme.server().post("/v1/rooms/standup/recording/start")

    assert response.status_code == 201
    recording = Recording.objects.get(pk=response.json()["recordingId"])
    assert recording.speaker_tracks and not recording.transcript
    [track] = recording.egresses.filter(kind="track_audio")
    assert (track.track_sid, track.participant_identity, track.participant_name) == (
        published["sid"],
        "alice",
        "Alice Token",
    )
