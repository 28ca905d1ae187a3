"""Ring time-out: the beat task turns unanswered ringing calls into missed ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from freezegun import freeze_time

from calls.models import Call, TimelineEntry
from calls.tasks import expire_ringing_calls
from scaiwave.models import Event

pytestmark = pytest.mark.django_db


def test_the_ring_sweep_is_scheduled_on_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["calls-expire-ringing"]
    assert entry["task"] == expire_ringing_calls.name
    assert float(entry["schedule"]) <= 5


def test_a_call_still_ringing_is_left_alone_before_its_time_out(ringing):
    assert expire_ringing_calls() == 0
    assert Call.objects.get(pk=ringing).status == "ringing"


def test_an_unanswered_call_is_missed_at_its_ring_time_out(acme, ringing):
    acme.user("bob").post(f"/v1/calls/{ringing}/reject")
    call = Call.objects.get(pk=ringing)

    with freeze_time(call.ring_expires_at + timedelta(seconds=1)):
        assert expire_ringing_calls() == 1

    call.refresh_from_db()
    assert call.status == "missed"
    assert call.end_reason == "ring_timeout"
    missed = Event.objects.get(type="swp.call.missed")
    # bob declined, so only carol and dave missed it.
    assert sorted(missed.user_ids) == sorted(acme.user_row(s).pk for s in ("carol", "dave"))
    assert missed.data["initiator_id"] == "alice"
    stop = Event.objects.filter(type="swp.call.ringing_cancelled", data__reason="timeout").get()
    assert sorted(stop.user_ids) == sorted(missed.user_ids)
    ended = Event.objects.get(type="swp.call.ended")
    assert ended.data["status"] == "missed"
    entry = TimelineEntry.objects.get(call=call)
    assert entry.kind == "missed_call"
    assert entry.data["initiator_id"] == "alice"


def test_the_sweep_is_idempotent(ringing):
    Call.objects.filter(pk=ringing).update(ring_expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_ringing_calls() == 1
    assert expire_ringing_calls() == 0
    assert Event.objects.filter(type="swp.call.ended").count() == 1


def test_an_answered_call_is_not_missed(acme, ringing):
    from calls.services import call_apply_livekit_event
    from calls.tests.test_livekit_events import lk_event

    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    Call.objects.filter(pk=ringing).update(ring_expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_ringing_calls() == 0
    assert Call.objects.get(pk=ringing).status == "active"
