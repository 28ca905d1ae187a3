"""Celery tasks of live calls (loaded through CELERY_IMPORTS in the calls settings section)."""

from __future__ import annotations

from celery import shared_task

from calls.live_services import live_calls_advance


@shared_task(name="calls.live_advance", acks_late=True, time_limit=120, soft_time_limit=100)
def advance_live_calls() -> dict[str, int]:
    """Beat, every LIVE_CALL_SWEEP_INTERVAL seconds: due calls whose host is connected go live; calls not
    started within LIVE_CALL_START_GRACE are errored. Safe to run twice (rows are claimed under locks)."""
    result = live_calls_advance()
    return {"started": result.started, "errored": result.errored, "waiting": result.waiting}
