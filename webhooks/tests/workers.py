"""A real Celery worker for the webhook tests that SIGKILL one mid-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings as django_settings
from django.db import connection


def worker_argv() -> list[str]:
    """One prefork process consuming every queue (settings.WORKER_QUEUES)."""
    return [sys.executable, "-m", "celery", "-A", "scaiwave", "worker", "-c", "1", "-P", "prefork",
            "-Q", ",".join(django_settings.WORKER_QUEUES),
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]  # fmt: skip


@contextmanager
def celery_worker(settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process (concurrency 1, prefork) on the test database and Redis, with the broker purged first.
    Leaving the block SIGKILLs it with its pool process: that is the fault under test."""
    from scaiwave.celery import app

    app.control.purge()
    with app.connection_for_write() as broker:  # every queue, also those this process never sent to
        for queue in django_settings.WORKER_QUEUES:
            broker.default_channel.queue_purge(queue)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_SEND_LEASE_SECONDS": "5",
        "WEBHOOK_TIMEOUT": "60",
        "LOG_LEVEL": "warning",
    }
    argv = worker_argv()
    worker = subprocess.Popen(
        argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool process
        worker.wait(timeout=30)
