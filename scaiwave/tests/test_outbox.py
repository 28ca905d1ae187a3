"""The transactional outbox: nothing is lost between commit and fan-out."""

from __future__ import annotations

import pytest
from django.db import transaction

from scaiwave.events import services as event_services
from scaiwave.events.services import event_emit, events_redispatch
from scaiwave.models import Event
from scaiwave.tests import recording_sink


@pytest.fixture(autouse=True)
def recording_sinks(settings):
    settings.EVENT_SINKS = ["scaiwave.tests.recording_sink.sink"]
    event_services._sinks.cache_clear()
    recording_sink.seen.clear()
    recording_sink.fail_next.clear()
    yield
    event_services._sinks.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_event_is_dispatched_after_commit(acme):
    with transaction.atomic():
        event = event_emit(tenant=acme.tenant, type="room_created", data={"roomId": "r1"})
        assert recording_sink.seen == []  # not before commit
    assert recording_sink.seen == [event.id]
    event.refresh_from_db()
    assert event.dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_emits_nothing(acme):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit(tenant=acme.tenant, type="room_created", data={})
        raise RuntimeError("the change failed")
    assert recording_sink.seen == []
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_sink_failure_leaves_the_event_for_the_redispatcher(acme):
    recording_sink.fail_next.append(True)
    with transaction.atomic():
        event = event_emit(tenant=acme.tenant, type="participant_joined", data={})
    event.refresh_from_db()
    assert event.dispatched_at is None and event.dispatch_attempts == 1
    assert "broker down" in event.last_dispatch_error
    assert events_redispatch(older_than_seconds=0) == 1
    assert recording_sink.seen == [event.id]
    event.refresh_from_db()
    assert event.dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_crash_between_commit_and_dispatch_loses_nothing(acme, monkeypatch):
    # The process "dies" right after commit: the on-commit dispatch never runs.
    monkeypatch.setattr(event_services, "_dispatch_after_commit", lambda seq: None)
    with transaction.atomic():
        first = event_emit(tenant=acme.tenant, type="call.a", data={})
        second = event_emit(tenant=acme.tenant, type="call.b", data={})
    assert recording_sink.seen == []
    assert events_redispatch(older_than_seconds=0) == 2
    assert recording_sink.seen == [first.id, second.id]  # in order
    assert events_redispatch(older_than_seconds=0) == 0  # and only once


@pytest.mark.django_db(transaction=True)
def test_redispatcher_leaves_fresh_events_to_their_own_dispatch(acme, monkeypatch):
    monkeypatch.setattr(event_services, "_dispatch_after_commit", lambda seq: None)
    with transaction.atomic():
        event_emit(tenant=acme.tenant, type="x", data={})
    assert events_redispatch(older_than_seconds=60) == 0


def test_beat_schedules_the_redispatcher(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "scaiwave.events.redispatch" in tasks
