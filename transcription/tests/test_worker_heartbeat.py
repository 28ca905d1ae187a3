"""Post-call transcription is available only while a worker consumes the speech queue (document 001: the stt-post
profile; 503 when the add-on is not running). Real Celery worker processes, over the test's Redis."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from scaiwave.tests.fault_stack import ManagedProcess, wait_until
from transcription import worker_heartbeat
from transcription.tests.conftest import librivox_clip
from transcription.tests.factories import composite_add, recording_make, room_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]
INTERVAL = 0.5


@pytest.fixture
def worker_check(settings: Any) -> Iterator[Any]:
    assert settings.REDIS_URL, "these tests run speech workers over Redis (make test sets REDIS_URL)"
    settings.TRANSCRIPTION_WORKER_CHECK = True
    settings.TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL = INTERVAL
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(worker_heartbeat.HEARTBEAT_KEY)
    yield settings
    client.delete(worker_heartbeat.HEARTBEAT_KEY)


def start_worker(queue: str, tmp_path: Path, settings: Any) -> ManagedProcess:
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL, "TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL": str(INTERVAL)}
    argv = [sys.executable, "-m", "celery", "-A", "scaiwave", "worker", "-Q", queue, "-n", f"{queue}-hb@%h",
            "--pool", "solo", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]  # fmt: skip
    return ManagedProcess(f"worker-{queue}", argv, env, tmp_path)


def post_call_capability(acme: Any) -> bool:
    capability: bool = acme.server().get("/v1/health").json()["capabilities"]["transcriptionPost"]
    return capability


def test_without_a_speech_worker_transcribe_is_503_and_health_says_so(acme, worker_check) -> None:
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, librivox_clip("0880")[0])

    response = acme.server().post(f"/v1/recordings/{recording.pk}/transcribe", {}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "transcription_unavailable"
    assert post_call_capability(acme) is False


def test_a_speech_worker_makes_it_available_and_its_death_takes_it_away(acme, worker_check, tmp_path) -> None:
    worker = start_worker("transcription", tmp_path, worker_check)
    try:
        wait_until(lambda: post_call_capability(acme), timeout=90, what="the speech worker's first heartbeat")
        worker.kill()
        killed_at = time.monotonic()
        wait_until(lambda: not post_call_capability(acme), timeout=10, what="the heartbeat to lapse")
        # Three missed beats, not a setting, took it away.
        assert time.monotonic() - killed_at <= 3 * INTERVAL + 2
    finally:
        worker.kill()


def test_a_worker_on_other_queues_does_not_count(acme, worker_check, tmp_path) -> None:
    worker = start_worker("default", tmp_path, worker_check)
    try:
        wait_until(lambda: "ready." in worker.output(), timeout=90, what="the default worker to be ready")
        time.sleep(3 * INTERVAL)
        assert post_call_capability(acme) is False
    finally:
        worker.kill()


def test_without_redis_the_heartbeat_is_a_file_in_the_data_folder(settings: Any, tmp_path: Path) -> None:
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    settings.TRANSCRIPTION_WORKER_HEARTBEAT_INTERVAL = 0.2
    assert worker_heartbeat.speech_worker_alive() is False

    worker_heartbeat.speech_worker_heartbeat_send()
    assert worker_heartbeat.speech_worker_alive() is True

    time.sleep(0.7)
    assert worker_heartbeat.speech_worker_alive() is False
