"""call_apply_livekit_event: LiveKit's webhooks are the truth about who is connected."""

from __future__ import annotations

import time

import pytest
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from calls.models import Call, CallParticipant
from calls.services import call_apply_livekit_event, calls_end_for_room
from scaiwave.models import Event

pytestmark = pytest.mark.django_db

_seq = iter(range(1, 10_000))


def lk_event(kind: str, call_id: str, identity: str = "", *, at: int | None = None, **extra) -> lk_webhook.WebhookEvent:
    event = lk_webhook.WebhookEvent(
        event=kind,
        id=f"EV_{next(_seq):012d}",
        created_at=at or int(time.time()),
        room=lk_models.Room(name=f"scaiwave-{call_id}", sid="RM_x"),
    )
    if identity:
        event.participant.CopyFrom(lk_models.ParticipantInfo(identity=identity, sid=f"PA_{identity}", **extra))
    return event


def track_event(kind: str, call_id: str, identity: str, sid: str, type_, *, muted: bool = False, at=None):
    event = lk_event(kind, call_id, at=at)
    event.participant.CopyFrom(lk_models.ParticipantInfo(identity=identity, sid=f"PA_{identity}"))
    event.track.CopyFrom(lk_models.TrackInfo(sid=sid, type=type_, muted=muted))
    return event


def participant(call_id: str, sub: str) -> CallParticipant:
    return CallParticipant.objects.get(call_id=call_id, user__external_id=sub)


def test_the_initiator_connecting_keeps_the_call_ringing(ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)

    assert Call.objects.get(pk=ringing).status == "ringing"
    assert participant(ringing, "alice").joined_at is not None


def test_the_first_callee_connecting_makes_the_call_active_and_stops_the_ring(acme, ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)

    call = Call.objects.get(pk=ringing)
    assert call.status == "active"
    assert call.started_at is not None
    stop = Event.objects.get(type="swp.call.ringing_cancelled")
    assert stop.data["reason"] == "answered"
    assert sorted(stop.user_ids) == sorted(acme.user_row(s).pk for s in ("bob", "carol", "dave"))
    joined = Event.objects.filter(type="swp.call.participant_joined").order_by("seq")
    assert [e.data["participant_id"] for e in joined] == ["alice", "bob"]


def test_a_repeated_join_webhook_changes_nothing(ringing):
    event = lk_event("participant_joined", ringing, "bob")
    call_apply_livekit_event(event, None)
    call_apply_livekit_event(event, None)

    assert Event.objects.filter(type="swp.call.participant_joined").count() == 1


def test_tracks_drive_audio_on_and_video_on(acme, ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", "TR_a", lk_models.AUDIO), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", "TR_v", lk_models.VIDEO), None)

    bob = participant(ringing, "bob")
    assert (bob.audio_on, bob.video_on) == (True, True)

    call_apply_livekit_event(track_event("track_unpublished", ringing, "bob", "TR_v", lk_models.VIDEO), None)
    bob = participant(ringing, "bob")
    assert (bob.audio_on, bob.video_on) == (True, False)
    state = acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]
    assert state["participants"][0]["audio_on"] is True
    assert state["participants"][0]["video_on"] is False


def test_a_muted_track_does_not_count_as_on(ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", "TR_a", lk_models.AUDIO, muted=True), None)

    assert participant(ringing, "bob").audio_on is False


def test_a_dropped_connection_is_a_leave_with_the_reason(acme, ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(
        lk_event("participant_left", ringing, "bob", disconnect_reason=lk_models.DisconnectReason.SIGNAL_CLOSE),
        None,
    )

    bob = participant(ringing, "bob")
    assert bob.left_at is not None
    assert bob.leave_reason == "signal_close"
    left = Event.objects.get(type="swp.call.participant_left")
    assert left.data["participant_id"] == "bob"
    assert Call.objects.get(pk=ringing).status == "active"  # alice is still there


def test_a_late_join_webhook_older_than_the_leave_is_ignored(ringing):
    now = int(time.time())
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice", at=now - 5), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob", at=now - 5), None)
    call_apply_livekit_event(lk_event("participant_left", ringing, "bob", at=now), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob", at=now - 3), None)

    assert participant(ringing, "bob").left_at is not None


def test_the_last_participant_leaving_ends_an_active_call(ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(lk_event("participant_left", ringing, "bob"), None)
    call_apply_livekit_event(lk_event("participant_left", ringing, "alice"), None)

    call = Call.objects.get(pk=ringing)
    assert call.status == "ended"
    assert call.end_reason == "last_participant_left"


def test_the_initiator_dropping_before_an_answer_cancels_the_call(ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "alice"), None)
    call_apply_livekit_event(lk_event("participant_left", ringing, "alice"), None)

    call = Call.objects.get(pk=ringing)
    assert call.status == "cancelled"
    assert call.end_reason == "initiator_left"


def test_room_finished_ends_an_active_call(acme, ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(lk_event("room_finished", ringing), None)

    call = Call.objects.get(pk=ringing)
    assert call.status == "ended"
    assert call.end_reason == "livekit_room_finished"
    assert participant(ringing, "bob").left_at is not None


def test_events_of_other_rooms_and_unknown_identities_are_ignored(ringing):
    other = lk_event("participant_joined", "x", "bob")
    other.room.name = "tn_abc--standup"
    call_apply_livekit_event(other, None)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "EG_recorder"), None)

    assert Call.objects.get(pk=ringing).status == "ringing"
    assert not CallParticipant.objects.filter(call_id=ringing, joined_at__isnull=False).exists()


def test_events_for_an_ended_call_change_nothing(acme, ringing):
    acme.user("alice").post(f"/v1/calls/{ringing}/end")

    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)

    assert Call.objects.get(pk=ringing).status == "cancelled"
    assert participant(ringing, "bob").joined_at is None


def test_closing_the_room_ends_its_live_call(standup, ringing):
    calls_end_for_room(standup)

    call = Call.objects.get(pk=ringing)
    assert call.status == "cancelled"
    assert call.end_reason == "room_closed"


def test_a_participants_own_mute_in_livekit_shows_as_audio_off(acme, ringing, livekit):
    # LiveKit sends no webhook when a client mutes its own track: the state asks LiveKit for the tracks.
    ticket = acme.user("bob").post(f"/v1/calls/{ringing}/join").json()["data"]
    livekit.control.connect(ticket["livekit_token"])
    room = ticket["livekit_room"]
    track = livekit.control.publish(room, "bob", kind="audio", unpublish_on_end=False)
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", track["sid"], lk_models.AUDIO), None)
    assert acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]["participants"][0]["audio_on"] is True

    livekit.control.mute(room, "bob", track["sid"], muted=True)

    state = acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]
    assert state["participants"][0]["audio_on"] is False
    assert participant(ringing, "bob").audio_on is False

    livekit.control.mute(room, "bob", track["sid"], muted=False)
    assert acme.user("bob").get(f"/v1/calls/{ringing}").json()["data"]["participants"][0]["audio_on"] is True


def test_a_track_muted_event_turns_audio_off(ringing):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", "TR_a", lk_models.AUDIO), None)

    call_apply_livekit_event(track_event("track_muted", ringing, "bob", "TR_a", lk_models.AUDIO, muted=True), None)

    assert participant(ringing, "bob").audio_on is False


def test_the_state_of_a_call_is_served_when_livekit_is_unreachable(acme, ringing, settings):
    call_apply_livekit_event(lk_event("participant_joined", ringing, "bob"), None)
    call_apply_livekit_event(track_event("track_published", ringing, "bob", "TR_a", lk_models.AUDIO), None)
    from livekit_emulator.testing import free_port

    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    settings.LIVEKIT_TIMEOUT = 0.5

    response = acme.user("bob").get(f"/v1/calls/{ringing}")

    assert response.status_code == 200
    assert response.json()["data"]["participants"][0]["audio_on"] is True
