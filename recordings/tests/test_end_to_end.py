"""Recording a call and a room end to end: emulator egress -> storage -> media entry -> download -> ffprobe."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from livekit_emulator.testing import EmulatorControl, wait_until
from recordings.models import MediaEntry, Recording, RecordingEgress
from recordings.tests.conftest import BUCKET, join_and_talk, wait_for_status
from scaiwave.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

READY_HANDLER_CALLS: list[str] = []


def remember_ready(recording: Recording) -> None:
    READY_HANDLER_CALLS.append(recording.pk)


def ffprobe_duration(source: str) -> float:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", source],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return float(json.loads(result.stdout)["format"]["duration"])


def _stopped_at(emulator_url: str, egress_id: str) -> float:
    """When the egress stops being ACTIVE, as seen by polling the emulator (monotonic time)."""
    control = EmulatorControl(emulator_url)
    try:
        wait_until(lambda: control.egress(egress_id)["status"] != "EGRESS_ACTIVE", timeout=60, interval=0.02)
        return time.monotonic()
    finally:
        control.close()


def record_for(client, emulator, start_path: str, stop_path: str, body=None, talk: float = 3.0):
    """Start, talk for `talk` seconds while LiveKit writes, stop. Returns (recording id, talk time).

    The talk time runs from the composite egress turning ACTIVE to it leaving ACTIVE, both seen by polling
    the emulator the same way, so the polling lag cancels out (the machine may be busy)."""
    started = client.post(start_path, body or {}, format="json")
    assert started.status_code == 201, started.content
    payload = started.json()
    recording_id = payload["data"]["id"] if "data" in payload else payload["recordingId"]
    egress_id = payload["data"]["egressId"] if "data" in payload else payload["egressId"]
    emulator.control.wait_for_egress(egress_id, ("EGRESS_ACTIVE",))
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        ended = pool.submit(_stopped_at, emulator.url, egress_id)
        wait_for_status(recording_id, Recording.Status.RECORDING)
        time.sleep(max(0.0, talk - (time.monotonic() - began)))
        stopped = client.post(stop_path, format="json")
        assert stopped.status_code == 200, stopped.content
        talk_time = ended.result() - began
    return recording_id, talk_time


@pytest.fixture
def ready_hook(settings):
    """A RECORDING_READY_HANDLERS entry, as the transcription app registers one."""
    from recordings.services import recording as recording_services

    settings.RECORDING_READY_HANDLERS = ["recordings.tests.test_end_to_end.remember_ready"]
    recording_services._ready_handlers.cache_clear()
    yield READY_HANDLER_CALLS
    recording_services._ready_handlers.cache_clear()


def test_a_call_recording_lands_in_the_bucket_and_downloads_as_playable_media(
    acme, standup, webhooks_to_scaiwave, livekit, s3_storage, ready_hook, tmp_path
):
    dave = acme.user("dave")
    call_id = dave.post("/v1/calls/initiate", {"room_id": "standup", "type": "video"}, format="json").json()["data"][
        "call_id"
    ]
    join_and_talk(livekit, f"scaiwave-{call_id}")

    recording_id, talk_time = record_for(
        dave,
        livekit,
        f"/v1/calls/{call_id}/recording/start",
        f"/v1/calls/{call_id}/recording/stop",
        {"audio": True, "video": True, "transcript": True},
    )
    recording = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED)
    assert recording.status == Recording.Status.READY, recording.failure_reason

    # The composite is in the bucket under the documented key.
    assert recording.storage_key.startswith(f"recordings/{call_id}/") and recording.storage_key.endswith(".mp4")
    head = s3_storage.head_object(Bucket=BUCKET, Key=recording.storage_key)
    assert head["ContentLength"] > 0
    # One audio track egress per speaker was registered too.
    tracks = RecordingEgress.objects.filter(recording=recording, kind=RecordingEgress.Kind.TRACK_AUDIO)
    assert sorted(tracks.values_list("participant_identity", flat=True)) == ["alice", "dave"]
    assert MediaEntry.objects.filter(recording=recording).count() == 3

    listed = dave.get(f"/v1/calls/{call_id}/recordings")
    assert listed.status_code == 200
    [reference] = listed.json()["data"]
    assert reference["recordingId"] == recording_id and reference["contentType"] == "video/mp4"
    assert reference["size"] == head["ContentLength"]
    download = httpx.get(reference["url"], timeout=30)
    assert download.status_code == 200 and len(download.content) == reference["size"]
    target = tmp_path / "call.mp4"
    target.write_bytes(download.content)
    assert abs(ffprobe_duration(str(target)) - talk_time) <= 0.1 * talk_time
    assert abs(reference["durationSeconds"] - talk_time) <= 0.1 * talk_time

    types = list(Event.objects.filter(tenant=acme.tenant).values_list("type", flat=True))
    for expected in ("recording_started", "recording_stopped", "recording_ready"):
        assert expected in types
    assert "swp.call.recording_started" in types and "swp.call.recording_stopped" in types
    assert ready_hook[-1] == recording_id


def test_a_room_recording_on_local_storage_serves_range_requests(
    acme, standup, webhooks_to_scaiwave, livekit, local_storage, tmp_path
):
    join_and_talk(livekit, standup.livekit_name)
    server = acme.server()
    recording_id, talk_time = record_for(
        server, livekit, "/v1/rooms/standup/recording/start", "/v1/rooms/standup/recording/stop"
    )
    recording = wait_for_status(recording_id, Recording.Status.READY, Recording.Status.FAILED)
    assert recording.status == Recording.Status.READY, recording.failure_reason
    assert recording.storage_key.startswith("recordings/standup/")
    assert (local_storage / recording.storage_key).stat().st_size > 0

    detail = server.get(f"/v1/recordings/{recording_id}").json()
    # The composite; a room recording also records each speaker's track (audio/ogg) beside it.
    [media] = [m for m in detail["media"] if m["contentType"] == "video/mp4"]
    assert len(detail["media"]) == 1 + recording.egresses.filter(kind="track_audio").count()
    assert media["url"].startswith(webhooks_to_scaiwave.url + "/v1/media/")
    whole = httpx.get(media["url"], timeout=30)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert len(whole.content) == media["size"]
    target = tmp_path / "room.mp4"
    target.write_bytes(whole.content)
    assert abs(ffprobe_duration(str(target)) - talk_time) <= 0.1 * talk_time

    part = httpx.get(media["url"], headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{media['size']}"
    assert part.content == whole.content[100:200]
    tail = httpx.get(media["url"], headers={"Range": "bytes=-10"}, timeout=30)
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    beyond = httpx.get(media["url"], headers={"Range": f"bytes={media['size']}-"}, timeout=30)
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{media['size']}"

    # The redirect endpoint points at the same file.
    redirect = server.get(f"/v1/recordings/{recording_id}/media")
    assert redirect.status_code == 302 and "/v1/media/" in redirect["Location"]
