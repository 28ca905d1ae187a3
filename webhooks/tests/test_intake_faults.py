"""LiveKit's webhook faults (duplicates, reordering, drops) against the real intake on a live server:
the mirror converges to LiveKit's truth, after a reconciliation where events were lost."""

from __future__ import annotations

from collections import Counter

import pytest

from rooms.models import Room, RoomParticipant
from rooms.tasks import reconcile_livekit
from rooms.testing import livekit, livekit_emulator, wait_for_webhooks  # noqa: F401
from scaiwave.models import Event
from webhooks.models import LiveKitEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.filterwarnings("ignore:The HMAC key is")]

PEOPLE = ["alice", "bob", "carol", "dave"]


@pytest.fixture
def intake(livekit, live_server):  # noqa: F811
    livekit.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    return livekit


def run_scenario(creds, emulator):
    """Four join, alice publishes, bob and dave leave. LiveKit's truth: alice and carol remain."""
    server = creds.server()
    server.post("/v1/rooms", {"name": "standup"}, format="json")
    room = Room.objects.get(tenant=creds.tenant, name="standup")
    for identity in PEOPLE:
        token = server.post(
            "/v1/token",
            {"roomId": "standup", "userId": identity, "name": identity, "role": "participant"},
            format="json",
        ).json()["token"]
        emulator.control.connect(token)
    emulator.control.publish(room.livekit_name, "alice", tone={"frequency": 440, "seconds": 30})
    emulator.control.disconnect(room.livekit_name, "bob")
    emulator.control.drop(room.livekit_name, "dave")
    return room


def livekit_truth(emulator, room):
    [state] = [r for r in emulator.control.state()["rooms"] if r["name"] == room.livekit_name]
    return {p["sid"] for p in state["participants"]}


def mirror(room):
    return set(RoomParticipant.objects.filter(room=room, state="joined").values_list("sid", flat=True))


def test_every_webhook_delivered_ten_times_is_applied_once(acme, intake):
    intake.control.faults(webhook={"duplicate": 9})

    room = run_scenario(acme, intake)
    wait_for_webhooks(intake)

    assert mirror(room) == livekit_truth(intake, room)
    assert set(LiveKitEvent.objects.values_list("duplicates", flat=True)) == {9}
    joined = Counter(Event.objects.filter(type="participant_joined").values_list("data__participantId", flat=True))
    assert joined == Counter(PEOPLE)
    left = Counter(Event.objects.filter(type="participant_left").values_list("data__participantId", flat=True))
    assert left == Counter(["bob", "dave"])
    assert Event.objects.filter(type="track_published").count() == 1


def test_reordered_webhooks_converge_and_never_announce_a_join_twice(acme, intake):
    intake.control.faults(webhook={"reorder": True, "reorder_window_ms": 400, "duplicate": 1})

    room = run_scenario(acme, intake)
    wait_for_webhooks(intake)
    reconcile_livekit()

    assert mirror(room) == livekit_truth(intake, room)
    sids = list(Event.objects.filter(type="participant_joined").values_list("data__participantSid", flat=True))
    assert len(sids) == len(set(sids))


def test_dropped_webhooks_converge_after_reconciliation(acme, intake):
    intake.control.faults(webhook={"drop_rate": 0.7})

    room = run_scenario(acme, intake)
    hooks = wait_for_webhooks(intake)
    reconcile_livekit()

    assert hooks["dropped"] > 0
    assert mirror(room) == livekit_truth(intake, room)
    assert mirror(room) == {
        sid
        for sid, identity in RoomParticipant.objects.filter(room=room).values_list("sid", "identity")
        if identity in ("alice", "carol")
    }
