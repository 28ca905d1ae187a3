"""Celery tasks of the calls app."""

from __future__ import annotations

from celery import shared_task

from calls.services import call_expire_ringing


@shared_task(name="calls.expire_ringing", acks_late=True, time_limit=60, soft_time_limit=50)
def expire_ringing_calls() -> int:
    """Beat, every CALL_RING_SWEEP_INTERVAL seconds: ringing calls past their time-out become missed."""
    return call_expire_ringing()
