"""50 threads joining, leaving, rejecting and ending one call on PostgreSQL converge to one valid state."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from calls.models import Call, CallParticipant
from calls.services import (
    call_apply_livekit_event,
    call_end,
    call_initiate,
    call_join,
    call_leave,
    call_reject,
)
from calls.tests.conftest import MEMBERS, make_room
from calls.tests.test_livekit_events import lk_event
from scaiwave.api.errors import ProblemError
from scaiwave.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_CODES = {"SW_CALL_ENDED", "SW_CALL_FORBIDDEN"}


@pytest.mark.parametrize("seed", [1, 2])
def test_fifty_concurrent_actions_end_in_one_consistent_state(acme, livekit, seed):
    members = {**MEMBERS, **{f"m{n}": 0 for n in range(12)}}
    make_room(acme, "standup", members)
    users = {sub: acme.user_row(sub) for sub in members}
    call_id = call_initiate(tenant=acme.tenant, user=users["alice"], room_name="standup", type="audio").call.pk
    rng = random.Random(seed)
    plan = []
    for n in range(50):
        sub = rng.choice(list(members))
        action = rng.choice(["join", "join", "connected", "connected", "leave", "reject", "dropped"])
        if n in (35, 45):
            sub, action = rng.choice(["alice", "dave"]), "end"
        plan.append((sub, action))
    unexpected: list[BaseException] = []
    barrier = threading.Barrier(len(plan))

    def run(sub: str, action: str) -> None:
        user = users[sub]
        try:
            barrier.wait(timeout=30)
            if action == "join":
                call_join(tenant=acme.tenant, user=user, call_id=call_id)
            elif action == "connected":
                call_apply_livekit_event(lk_event("participant_joined", call_id, sub), None)
            elif action == "dropped":
                call_apply_livekit_event(lk_event("participant_left", call_id, sub), None)
            elif action == "leave":
                call_leave(tenant=acme.tenant, user=user, call_id=call_id)
            elif action == "reject":
                call_reject(tenant=acme.tenant, user=user, call_id=call_id)
            elif action == "end":
                call_end(tenant=acme.tenant, user=user, call_id=call_id)
        except ProblemError as exc:
            if exc.code not in EXPECTED_CODES:
                unexpected.append(exc)
        except BaseException as exc:
            unexpected.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=step) for step in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not unexpected, unexpected
    call = Call.objects.get(pk=call_id)
    rows = list(CallParticipant.objects.filter(call=call))
    assert len(rows) == len({row.user_id for row in rows})
    assert len(rows) <= len(members)
    ended_events = Event.objects.filter(type="swp.call.ended", data__call_id=call_id).count()
    if call.is_live:
        assert call.ended_at is None
        assert ended_events == 0
        if call.status == "active":
            assert call.started_at is not None
            assert any(row.is_connected for row in rows)
    else:
        assert call.ended_at is not None
        assert ended_events == 1
        assert not any(row.is_connected for row in rows), "a finished call has nobody connected"
    assert Call.objects.filter(room=call.room, status__in=Call.LIVE_STATUSES).count() <= 1
