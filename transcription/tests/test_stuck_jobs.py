"""A post-call job whose worker died is taken back by beat, not left to the broker's visibility time-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scaiwave.models import Event
from transcription.models import Transcription
from transcription.services import transcriptions_recover_stuck
from transcription.tests.factories import recording_make, room_make

pytestmark = pytest.mark.django_db


def job(acme, *, status: str, started_minutes_ago: float, attempts: int = 1) -> Transcription:
    started = timezone.now() - timedelta(minutes=started_minutes_ago)
    room = room_make(acme.tenant, name=f"room-{Transcription.objects.count()}")
    return Transcription.objects.create(
        tenant=acme.tenant,
        recording=recording_make(room),
        status=status,
        attempts=attempts,
        started_at=started,
        created_at=started,
    )


def test_a_job_processing_past_the_limit_is_queued_again(acme, settings, django_capture_on_commit_callbacks):
    settings.TRANSCRIPTION_STUCK_AFTER = 600
    lost = job(acme, status="processing", started_minutes_ago=30)
    with django_capture_on_commit_callbacks() as queued:
        assert transcriptions_recover_stuck() == 1
    lost.refresh_from_db()
    assert lost.status == "queued" and "lost" in lost.error
    assert len(queued) == 1  # the task is sent again once the change is committed
    assert not Event.objects.filter(type="transcription_failed").exists()


def test_a_job_with_no_retries_left_fails_with_the_reason(acme, settings):
    settings.TRANSCRIPTION_STUCK_AFTER = 600
    settings.TRANSCRIPTION_MAX_RETRIES = 2
    lost = job(acme, status="processing", started_minutes_ago=30, attempts=3)
    assert transcriptions_recover_stuck() == 1
    lost.refresh_from_db()
    assert lost.status == "failed" and "no retries are left" in lost.error and lost.completed_at is not None
    [failed] = Event.objects.filter(type="transcription_failed")
    assert failed.data["transcriptionId"] == lost.pk and failed.data["error"] == lost.error
    assert failed.room_key == str(lost.recording.room_id)
    assert transcriptions_recover_stuck() == 0  # a failed job is left alone: no second event
    assert Event.objects.filter(type="transcription_failed").count() == 1


def test_running_recent_and_finished_jobs_are_left_alone(acme, settings, django_capture_on_commit_callbacks):
    settings.TRANSCRIPTION_STUCK_AFTER = 600
    running = job(acme, status="processing", started_minutes_ago=2)
    done = job(acme, status="completed", started_minutes_ago=60)
    live = job(acme, status="active", started_minutes_ago=60)
    Transcription.objects.filter(pk=live.pk).update(mode="live")
    with django_capture_on_commit_callbacks() as queued:
        assert transcriptions_recover_stuck() == 0
    assert queued == []
    assert {t.pk: t.status for t in Transcription.objects.all()} == {
        running.pk: "processing",
        done.pk: "completed",
        live.pk: "active",
    }


def test_beat_schedules_the_sweep(settings):
    assert any(entry["task"] == "transcription.recover_stuck" for entry in settings.CELERY_BEAT_SCHEDULE.values())
