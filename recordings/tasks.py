"""Celery tasks of the recordings app. They take ids, call one service, and are safe to run twice."""

from __future__ import annotations

from celery import shared_task

from recordings import services


@shared_task(
    name="recordings.register_files",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
    time_limit=600,
    soft_time_limit=540,
)
def recording_register_files_task(recording_id: str) -> str | None:
    """Verify and register a recording's egress files (queued on commit when an egress ends)."""
    recording = services.recording_register_file(recording_id=recording_id)
    return recording.status if recording is not None else None


@shared_task(name="recordings.reconcile_egress", acks_late=True, time_limit=300, soft_time_limit=270)
def recordings_reconcile_egress_task() -> int:
    """Beat: egress stuck in starting/active/ending is checked against LiveKit's ListEgress."""
    return services.recordings_reconcile_egress()


@shared_task(name="recordings.sweep_media", acks_late=True, time_limit=1800, soft_time_limit=1700)
def media_sweep_orphans_task() -> dict[str, int]:
    """Beat: orphan objects under recordings/ are removed; rows whose object vanished are flagged."""
    return services.media_sweep_orphans()
