"""Celery tasks of the uploaded-call surface. Processing runs on the `transcription` queue (CELERY_TASK_ROUTES)
next to the speech model; the sweeps are beat tasks. Tasks take ids and are safe to run twice."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from transcription.analysis import services
from transcription.services import TranscriptionRetry


@shared_task(
    bind=True,
    name="analysis.process_call",
    acks_late=True,
    max_retries=None,  # transcription_run counts attempts itself (TRANSCRIPTION_MAX_RETRIES)
    soft_time_limit=settings.TRANSCRIPTION_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.TRANSCRIPTION_TASK_SOFT_TIME_LIMIT + 120,
)
def uploaded_call_process_task(self: Task, call_id: str) -> None:
    try:
        services.uploaded_call_process(call_id=call_id)
    except TranscriptionRetry as exc:
        raise self.retry(exc=exc, countdown=30 * (self.request.retries + 1)) from exc


@shared_task(name="analysis.recover_stuck", acks_late=True, time_limit=300, soft_time_limit=270)
def uploaded_calls_recover_stuck_task() -> dict[str, int]:
    """Beat: requeue or fail calls whose worker was lost (never TRANSCRIBING forever)."""
    return services.uploaded_calls_recover_stuck()


@shared_task(name="analysis.enforce_retention", acks_late=True, time_limit=1800, soft_time_limit=1700)
def uploaded_calls_enforce_retention_task() -> dict[str, int]:
    """Beat: delete calls older than their tenant's retention_days, storage objects first."""
    return services.uploaded_calls_enforce_retention()
