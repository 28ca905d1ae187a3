"""Exactly one Celery beat runs: a second one waits for the lock and takes over when the first dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from scaiwave import beat_lock

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_second_embedded_beat_waits_and_takes_over_when_the_first_dies(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "scaiwave.settings", "PYTHONUNBUFFERED": "1"})

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        argv = [sys.executable, "-m", "celery", "-A", "scaiwave", "beat", "-l", "info",
                "-s", str(tmp_path / f"{name}-schedule")]  # fmt: skip
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # fmt: skip
        return process, log

    first, first_log = start("first")
    second = None
    try:
        assert _wait_for(lambda: "beat lock held" in first_log.read_text(), 90), first_log.read_text()
        second, second_log = start("second")
        assert _wait_for(lambda: "waiting for it" in second_log.read_text(), 90), second_log.read_text()
        time.sleep(2)
        assert "beat lock held" not in second_log.read_text()
        assert "Sending due task" not in second_log.read_text()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        assert _wait_for(lambda: "beat lock held" in second_log.read_text(), 30), second_log.read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_the_redis_lock_admits_one_beat_and_frees_within_the_ttl_when_it_dies(monkeypatch):
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(beat_lock.BEAT_LOCK_KEY)
    monkeypatch.setattr(beat_lock, "_WAIT_SECONDS", 0.05)
    lost: list[str] = []
    first_renewal = beat_lock._hold_redis_lock(settings.REDIS_URL, 3.0, on_lost=lambda: lost.append("first"))
    first = beat_lock._held[-1]
    second_renewal: list[threading.Event] = []

    def second_beat() -> None:
        second_renewal.append(
            beat_lock._hold_redis_lock(settings.REDIS_URL, 3.0, on_lost=lambda: lost.append("second"))
        )

    second = threading.Thread(target=second_beat, daemon=True)
    try:
        second.start()
        second.join(4.5)  # the first holder keeps renewing: the second still waits past the TTL
        assert second.is_alive()
        # The first holder "dies": nobody renews its key, which expires within the TTL; the second takes over.
        first_renewal.set()
        second.join(5)
        assert not second.is_alive()
        assert client.get(beat_lock.BEAT_LOCK_KEY) == beat_lock._held[-1].local.token != first.local.token
        assert lost == []
    finally:
        first_renewal.set()
        for renewal in second_renewal:
            renewal.set()
        client.delete(beat_lock.BEAT_LOCK_KEY)
