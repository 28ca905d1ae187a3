"""Celery tasks of the transcription app, routed to their own `transcription` queue (CELERY_TASK_ROUTES) so a
long recording never starves webhook delivery. The model is loaded once per worker process (engine_get)."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from transcription.services import TranscriptionRetry, transcription_run, transcriptions_recover_stuck


@shared_task(
    bind=True,
    name="transcription.tasks.transcription_run",
    acks_late=True,
    max_retries=None,  # transcription_run counts attempts itself (TRANSCRIPTION_MAX_RETRIES)
    soft_time_limit=settings.TRANSCRIPTION_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.TRANSCRIPTION_TASK_SOFT_TIME_LIMIT + 120,
)
def transcription_run_task(self: Task, transcription_id: str) -> None:
    try:
        transcription_run(transcription_id=transcription_id)
    except TranscriptionRetry as exc:
        raise self.retry(exc=exc, countdown=30 * (self.request.retries + 1)) from exc


@shared_task(name="transcription.recover_stuck", acks_late=True, time_limit=120, soft_time_limit=100)
def transcriptions_recover_stuck_task() -> int:
    return transcriptions_recover_stuck()
