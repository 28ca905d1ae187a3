"""A live call end to end on the emulator, with its webhooks reaching ScaiWave over HTTP:
schedule -> start -> the host publishes -> a viewer's token cannot publish -> end -> the recording downloads
as a playable file."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from calls.models import LiveCall
from livekit_emulator.testing import EmulatorControlError, EmulatorProcess
from recordings.models import RecordingEgress
from scaiwave.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

URL = "/v1/live/calls"


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-media")


@pytest.fixture(scope="module")
def recording_emulator(media_root: Path) -> Iterator[EmulatorProcess]:
    """An emulator writing local egress files where ScaiWave's local storage reads them (as `make run` does)."""
    env = {"EMULATOR_FILE_OUTPUT_DIR": str(media_root), "EMULATOR_EGRESS_START_DELAY": "0.2"}
    with EmulatorProcess(env=env, api_secret="live-calls-test-secret-long-enough-for-hs256") as process:
        yield process


@pytest.fixture
def stack(recording_emulator: EmulatorProcess, media_root: Path, live_server: Any, settings: Any) -> Iterator[Any]:
    emulator = recording_emulator
    emulator.control.reset()
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_PUBLIC_URL = emulator.ws_url
    settings.LIVEKIT_API_KEY = emulator.api_key
    settings.LIVEKIT_API_SECRET = emulator.api_secret
    settings.PUBLIC_BASE_URL = live_server.url
    settings.S3_BUCKET = ""
    settings.MEDIA_ROOT = media_root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media_root)}},
    }
    emulator.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    eager = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    yield emulator
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = eager
    emulator.control.config(webhook_urls=[])
    shutil.rmtree(media_root / "recordings", ignore_errors=True)


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


def ffprobe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of", "json", str(path)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_schedule_start_publish_end_and_download_the_recording(acme, stack, live_server, tmp_path):
    alice, bob = acme.user("alice"), acme.user("bob")
    created = alice.post(URL, {"host_user_id": "alice", "title": "Launch"}, format="json").json()
    call_url = f"{URL}/{created['id']}"
    room = created["stream_call_id"]

    started = alice.post(f"{call_url}/start")
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "live"
    live = LiveCall.objects.get(pk=created["id"])
    egress_id = RecordingEgress.objects.get(recording=live.recording_id).egress_id
    stack.control.wait_for_egress(egress_id, ("EGRESS_ACTIVE",))

    # The host publishes a tone with the publisher token ScaiWave gave them.
    host_token = alice.post(f"{call_url}/token").json()
    assert host_token["role"] == "host"
    stack.control.connect(host_token["token"])
    tone = stack.control.publish(room, "alice", tone={"frequency": 440, "seconds": 2}, unpublish_on_end=False)
    assert tone["sid"]

    # A viewer joins and watches, but LiveKit refuses their publish.
    viewer_token = bob.post(f"{call_url}/token").json()
    assert viewer_token["role"] == "viewer"
    stack.control.connect(viewer_token["token"])
    with pytest.raises(EmulatorControlError) as refused:
        stack.control.publish(room, "bob", tone={"frequency": 660, "seconds": 1})
    assert refused.value.status == 403 and refused.value.code == "permission_denied"

    time.sleep(2.2)  # the tone plays out while LiveKit records
    ended = alice.post(f"{call_url}/end")
    assert ended.status_code == 200, ended.content
    assert ended.json()["status"] == "ended" and ended.json()["ended_at"]

    # The egress webhooks reach ScaiWave, the file is registered, and the live call shows the recording.
    shown = wait_for(lambda: (b := alice.get(call_url).json())["recording_url"] and b, timeout=45)
    assert shown["recording_ready_at"] is not None
    assert shown["recording_url"].startswith(live_server.url + "/v1/media/")
    download = httpx.get(shown["recording_url"], timeout=30)
    assert download.status_code == 200 and len(download.content) > 0
    target = tmp_path / "live.mp4"
    target.write_bytes(download.content)
    probe = ffprobe(target)
    assert "audio" in [stream["codec_type"] for stream in probe["streams"]]
    assert float(probe["format"]["duration"]) >= 1.5

    # The core followed: the call ended, the LiveKit room is gone, the Room row closed.
    live.refresh_from_db()
    assert live.call is not None and live.call.status == "ended"
    wait_for(lambda: room not in [r["name"] for r in stack.control.state()["rooms"]])
    live.room.refresh_from_db()
    assert live.room.closed_at is not None
