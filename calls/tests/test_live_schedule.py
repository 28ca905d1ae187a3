"""Time-driven transitions of live calls, with the clock under control (freezegun): the scheduled-start beat
and the start grace; and what a closed room does to a live call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from freezegun import freeze_time

from calls.live_services import AdvanceResult, live_calls_advance
from calls.models import LiveCall
from rooms.services import room_close

pytestmark = pytest.mark.django_db

URL = "/v1/live/calls"
GRACE = 600


@pytest.fixture(autouse=True)
def grace(settings):
    settings.LIVE_CALL_START_GRACE = GRACE


def schedule(creds, *, at=None, host: str = "alice") -> LiveCall:
    body = {"host_user_id": host, "title": "AMA", "scheduled_at": at.isoformat() if at else None}
    response = creds.user(host).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return LiveCall.objects.get(pk=response.json()["id"])


def soon():
    # Close to the real clock: the emulator accepts tokens signed up to 60 s in the future.
    return (timezone.now() + timedelta(seconds=20)).replace(microsecond=0)


def connect_host(creds, emulator, live: LiveCall, host: str = "alice") -> None:
    token = creds.user(host).post(f"{URL}/{live.pk}/token").json()["token"]
    emulator.control.connect(token)


def test_a_call_is_not_started_before_its_time_even_with_the_host_connected(acme, livekit):
    live = schedule(acme, at=soon())
    connect_host(acme, livekit, live)
    with freeze_time(live.scheduled_at - timedelta(seconds=5), tick=True):
        result = live_calls_advance()
    assert result.started == 0
    live.refresh_from_db()
    assert live.status == LiveCall.Status.SCHEDULED


def test_a_due_call_waits_for_its_host_then_goes_live_when_the_host_connects(acme, livekit):
    live = schedule(acme, at=soon())
    with freeze_time(live.scheduled_at + timedelta(seconds=1), tick=True):
        waiting = live_calls_advance()
    assert (waiting.started, waiting.waiting) == (0, 1)
    connect_host(acme, livekit, live)
    moment = live.scheduled_at + timedelta(seconds=2)
    with freeze_time(moment):
        started = live_calls_advance()
    assert started.started == 1
    live.refresh_from_db()
    assert live.status == LiveCall.Status.LIVE
    assert live.started_at == moment
    assert live.call is not None and live.recording is not None
    # A second beat finds nothing to do.
    with freeze_time(moment + timedelta(seconds=15), tick=True):
        assert live_calls_advance().started == 0


def test_a_call_not_started_within_the_grace_is_errored_with_the_reason(acme, livekit):
    live = schedule(acme, at=soon())
    with freeze_time(live.scheduled_at + timedelta(seconds=GRACE - 1)):
        assert live_calls_advance().errored == 0
    live.refresh_from_db()
    assert live.status == LiveCall.Status.SCHEDULED
    with freeze_time(live.scheduled_at + timedelta(seconds=GRACE)):
        assert live_calls_advance().errored == 1
    live.refresh_from_db()
    assert live.status == LiveCall.Status.ERRORED
    assert live.error_reason == "not started within 10 minutes of its scheduled time"
    assert live.ended_at == live.scheduled_at + timedelta(seconds=GRACE)
    shown = acme.user("alice").get(f"{URL}/{live.pk}").json()
    assert shown["status"] == "errored" and shown["error_reason"] == live.error_reason


def test_an_unscheduled_call_is_due_from_its_creation(acme, livekit):
    live = schedule(acme, at=None)
    with freeze_time(live.created_at + timedelta(seconds=GRACE)):
        assert live_calls_advance().errored == 1
    live.refresh_from_db()
    assert live.status == LiveCall.Status.ERRORED


def test_a_host_connecting_after_the_grace_is_too_late(acme, livekit):
    live = schedule(acme, at=soon())
    connect_host(acme, livekit, live)
    with freeze_time(live.scheduled_at + timedelta(seconds=GRACE + 1)):
        result = live_calls_advance()
    assert (result.started, result.errored) == (0, 1)
    live.refresh_from_db()
    assert live.status == LiveCall.Status.ERRORED


def test_a_call_scheduled_far_ahead_is_left_alone(acme, livekit):
    live = schedule(acme, at=timezone.now() + timedelta(days=2))
    with freeze_time(timezone.now() + timedelta(days=1)):
        assert live_calls_advance() == AdvanceResult()
    live.refresh_from_db()
    assert live.status == LiveCall.Status.SCHEDULED


def test_the_room_closing_before_the_start_errors_the_call_and_after_it_ends_it(acme, livekit):
    waiting = schedule(acme, at=soon())
    running = schedule(acme, at=None)
    assert acme.user("alice").post(f"{URL}/{running.pk}/start").status_code == 200
    for live in (waiting, running):
        with transaction.atomic():
            room_close(room=live.room, reason="finished")
        live.refresh_from_db()
    assert waiting.status == LiveCall.Status.ERRORED
    assert waiting.error_reason == "the LiveKit room closed before the call went live"
    assert running.status == LiveCall.Status.ENDED
    assert running.call is not None and running.call.status == "ended"
