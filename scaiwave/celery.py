"""The Celery app: JSON only, late acks, time limits (settings CELERY_*)."""

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, task_postrun
from django.conf import settings
from django.db import close_old_connections

from scaiwave.beat_lock import beat_lock_hold
from scaiwave.broker import FifoFilesystemTransport
from transcription.worker_heartbeat import SpeechWorkerHeartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")

app = Celery("scaiwave")
app.config_from_object("django.conf:settings", namespace="CELERY")
if (
    getattr(settings, "CELERY_BROKER_URL", "") == "filesystem://"
):  # getattr: mypy cannot type it through this import cycle
    # Embedded mode: the filesystem transport with message names that keep FIFO order (scaiwave/broker.py).
    app.conf.broker_transport = FifoFilesystemTransport
app.autodiscover_tasks()
app.autodiscover_tasks(["scaiwave.events"])
# A second beat would send every periodic task twice: each beat waits for the one beat lock first.
beat_init.connect(beat_lock_hold, weak=False)
# Workers on the speech queue announce themselves; the transcription endpoints answer 503 without one.
app.steps["worker"].add(SpeechWorkerHeartbeat)


@task_postrun.connect
def _release_database_connections(task: Any = None, **kwargs: Any) -> None:
    """Hand each task's database connections back (or drop broken ones), as Django does after a request.

    Celery's Django fix-up would close them itself, and with psycopg's pool the whole pool, after every
    task (celery#10554), so each task paid for a new PostgreSQL connection; CELERY_DB_REUSE_MAX (settings)
    turns that off and this takes its place. Eager tasks run inside the caller's transaction: left alone.
    """
    if task is not None and task.request.is_eager:
        return
    close_old_connections()
