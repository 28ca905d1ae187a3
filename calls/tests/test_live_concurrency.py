"""Racing writes on one live call (threads on PostgreSQL): starts, the beat, ends and the room closing
are serialized by the Room -> Call -> LiveCall locks and converge to one valid state."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from calls.live_services import live_call_create, live_call_end, live_call_start, live_calls_advance
from calls.models import Call, LiveCall
from recordings.models import Recording
from rooms.services import room_close
from scaiwave.api.errors import ProblemError

pytestmark = pytest.mark.django_db(transaction=True)


def race(actions: list[Callable[[], object]]) -> tuple[list[str], list[BaseException]]:
    """Run the actions at once; returns the problem codes raised and anything unexpected."""
    codes: list[str] = []
    unexpected: list[BaseException] = []
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            action()
        except ProblemError as exc:
            codes.append(exc.code)
        except BaseException as exc:
            unexpected.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes, unexpected


def test_concurrent_starts_and_the_beat_start_the_call_once(acme, livekit):
    host = acme.user_row("alice")
    live = live_call_create(tenant=acme.tenant, host=host, title="Race")
    livekit.control.connect(livekit.token("alice", live.stream_call_id))

    def start() -> object:
        return live_call_start(tenant=acme.tenant, live_call_id=live.pk, by=host)

    codes, unexpected = race([start, start, start, live_calls_advance, live_calls_advance])
    assert not unexpected, unexpected
    assert set(codes) <= {"live_call_state_conflict"}
    live.refresh_from_db()
    assert live.status == LiveCall.Status.LIVE
    assert Call.objects.count() == 1 and Recording.objects.count() == 1
    assert live.call_id == Call.objects.get().pk and live.recording_id == Recording.objects.get().pk


def test_an_end_racing_the_room_closing_ends_the_call_once_without_deadlock(acme, livekit):
    host = acme.user_row("alice")
    live = live_call_create(tenant=acme.tenant, host=host, title="Race")
    live_call_start(tenant=acme.tenant, live_call_id=live.pk, by=host)

    def end() -> object:
        return live_call_end(tenant=acme.tenant, live_call_id=live.pk, by=None)

    def room_finished() -> object:
        with transaction.atomic():
            return room_close(room=live.room, reason="finished")

    codes, unexpected = race([end, room_finished, end])
    assert not unexpected, unexpected
    assert set(codes) <= {"live_call_state_conflict"}
    live.refresh_from_db()
    assert live.status == LiveCall.Status.ENDED
    assert Call.objects.get().status == Call.Status.ENDED
