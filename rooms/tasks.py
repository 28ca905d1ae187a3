"""Beat tasks of the rooms app."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from rooms.livekit_events import rooms_reconcile


@shared_task(name="rooms.reconcile_livekit", acks_late=True, time_limit=300, soft_time_limit=240)
def reconcile_livekit() -> dict[str, int]:
    """Compare open rooms and their participants with LiveKit (every LIVEKIT_RECONCILE_INTERVAL s).
    Safe to run twice: each room is reconciled under its row lock against a fresh listing."""
    return asdict(rooms_reconcile())
