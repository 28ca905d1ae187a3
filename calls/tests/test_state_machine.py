"""Call.TRANSITIONS is the one place the state machine lives; transition_to enforces it."""

from __future__ import annotations

import pytest

from calls.models import Call, InvalidCallTransition

ALLOWED = {
    ("ringing", "active"),
    ("ringing", "missed"),
    ("ringing", "rejected"),
    ("ringing", "cancelled"),
    ("ringing", "failed"),
    ("active", "ended"),
    ("active", "failed"),
}
STATUSES = [status for status, _ in Call.Status.choices]


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_only_the_documented_transitions_are_allowed(current, target):
    call = Call(status=current)

    if (current, target) in ALLOWED:
        call.transition_to(target, reason="why")
        assert call.status == target
    else:
        with pytest.raises(InvalidCallTransition):
            call.transition_to(target)
        assert call.status == current


def test_becoming_active_stamps_started_at_and_ending_stamps_ended_at_and_reason():
    call = Call(status="ringing")
    call.transition_to("active")
    assert call.started_at is not None
    assert call.ended_at is None

    call.transition_to("ended", reason="ended_by_user")
    assert call.ended_at is not None
    assert call.end_reason == "ended_by_user"


def test_failing_records_the_failure_reason():
    call = Call(status="ringing")
    call.transition_to("failed", reason="livekit: unreachable")
    assert call.failure_reason == "livekit: unreachable"
