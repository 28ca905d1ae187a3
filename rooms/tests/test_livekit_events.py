"""The participant mirror fed by LiveKit's webhooks: idempotent, order-tolerant, scoped to our rooms.

Events are signed here exactly as LiveKit signs them and posted to the real intake endpoint.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.test import Client
from livekit.protocol import ingress as lk_ingress
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from rooms.models import Room, RoomParticipant
from rooms.testing import sign_webhook, webhook_body
from scaiwave.models import Event
from webhooks.models import LiveKitEvent

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)
NOW = int(time.time())


@pytest.fixture(autouse=True)
def _livekit_keys(settings):
    settings.LIVEKIT_URL = "http://127.0.0.1:9"  # never called by the mirror
    settings.LIVEKIT_API_KEY = "devkey"
    settings.LIVEKIT_API_SECRET = "secret"


@pytest.fixture
def room(acme):
    return Room.objects.create(
        tenant=acme.tenant,
        name="standup",
        livekit_name=Room.livekit_name_for(acme.tenant, "standup"),
        livekit_sid="RM_1",
    )


def participant(identity="alice", sid="PA_alice", joined_ms=None):
    return lk_models.ParticipantInfo(
        sid=sid,
        identity=identity,
        name=identity.title(),
        state=lk_models.ParticipantInfo.State.ACTIVE,
        joined_at=(joined_ms or NOW * 1000) // 1000,
        joined_at_ms=joined_ms or NOW * 1000,
    )


def make(kind, livekit_name, *, room_sid="RM_1", at=NOW, event_id=None, **fields):
    return lk_webhook.WebhookEvent(
        event=kind,
        room=lk_models.Room(sid=room_sid, name=livekit_name),
        id=event_id or f"EV_test{next(_ids):08d}",
        created_at=at,
        **fields,
    )


def deliver(event):
    body = webhook_body(event)
    response = Client().post(
        "/v1/calls/webhook", data=body, content_type="application/webhook+json", HTTP_AUTHORIZATION=sign_webhook(body)
    )
    assert response.status_code == 200, response.content
    return response.json()


def events_of(type_):
    return list(Event.objects.filter(type=type_).order_by("seq"))


def test_a_join_is_mirrored_and_announced(room):
    answer = deliver(make("participant_joined", room.livekit_name, participant=participant()))

    assert answer["outcome"] == "applied"
    row = RoomParticipant.objects.get(room=room)
    assert (row.identity, row.sid, row.state, row.name) == ("alice", "PA_alice", "joined", "Alice")
    [event] = events_of("participant_joined")
    assert event.room_key == str(room.pk)
    assert event.data["roomId"] == "standup"
    assert event.data["participantId"] == "alice"


def test_the_same_event_delivered_ten_times_is_applied_once(room):
    event = make("participant_joined", room.livekit_name, participant=participant())

    answers = [deliver(event) for _ in range(10)]

    assert [a["duplicate"] for a in answers] == [False] + [True] * 9
    assert LiveKitEvent.objects.get(event_id=event.id).duplicates == 9
    assert len(events_of("participant_joined")) == 1


def test_a_leave_delivered_before_its_join_leaves_no_ghost(room):
    joined = make("participant_joined", room.livekit_name, participant=participant(), at=NOW)
    left = make("participant_left", room.livekit_name, participant=participant(), at=NOW + 1)

    deliver(left)
    answer = deliver(joined)

    assert answer["outcome"] == "stale"
    assert RoomParticipant.objects.get(room=room).state == "left"
    assert events_of("participant_joined") == []


def test_a_leave_is_mirrored_and_announced_once(room):
    deliver(make("participant_joined", room.livekit_name, participant=participant()))
    leave = make("participant_left", room.livekit_name, participant=participant(), at=NOW + 2)

    deliver(leave)
    deliver(make("participant_connection_aborted", room.livekit_name, participant=participant(), at=NOW + 3))

    row = RoomParticipant.objects.get(room=room)
    assert row.state == "left"
    assert len(events_of("participant_left")) == 1


def test_a_rejoin_with_a_new_sid_supersedes_the_old_connection_in_any_order(room):
    old = make("participant_joined", room.livekit_name, participant=participant(sid="PA_1", joined_ms=NOW * 1000))
    new = make("participant_joined", room.livekit_name, participant=participant(sid="PA_2", joined_ms=NOW * 1000 + 500))

    deliver(new)
    assert deliver(old)["outcome"] == "stale"

    assert list(RoomParticipant.objects.filter(state="joined").values_list("sid", flat=True)) == ["PA_2"]


def test_a_join_for_a_room_we_do_not_have_adopts_it(acme):
    livekit_name = Room.livekit_name_for(acme.tenant, "adhoc")

    deliver(make("participant_joined", livekit_name, room_sid="RM_9", participant=participant()))

    room = Room.objects.get(tenant=acme.tenant, name="adhoc")
    assert room.is_open and room.livekit_sid == "RM_9"
    assert RoomParticipant.objects.filter(room=room, state="joined").count() == 1
    assert len(events_of("room_created")) == 1


def test_call_rooms_and_unknown_tenant_prefixes_are_ignored(acme):
    deliver(make("participant_joined", "scaiwave-call-abc", participant=participant()))
    deliver(make("participant_joined", "tn_doesnotexist00--x", participant=participant()))

    assert not Room.objects.exists()
    assert not RoomParticipant.objects.exists()


def test_a_name_without_a_prefix_is_the_first_tenants_room_and_a_prefixed_one_the_other_tenants(acme, globex):
    deliver(make("participant_joined", "standup", room_sid="RM_a", participant=participant()))
    deliver(make("participant_joined", f"{globex.tenant.pk}--standup", room_sid="RM_g", participant=participant()))

    assert (acme.tenant.livekit_room_prefix, globex.tenant.livekit_room_prefix) == ("", f"{globex.tenant.pk}--")
    rooms = {room.tenant_id: (room.name, room.livekit_name) for room in Room.objects.all()}
    assert rooms == {
        acme.tenant.pk: ("standup", "standup"),
        globex.tenant.pk: ("standup", f"{globex.tenant.pk}--standup"),
    }


def test_with_every_tenant_prefixed_a_name_without_a_prefix_is_nobodys(acme):
    type(acme.tenant).objects.filter(pk=acme.tenant.pk).update(livekit_room_prefix=f"{acme.tenant.pk}--")

    deliver(make("participant_joined", "someone-elses-room", participant=participant()))

    assert not Room.objects.exists()


def test_room_finished_closes_the_room_and_everyone_leaves(room):
    deliver(make("participant_joined", room.livekit_name, participant=participant()))

    deliver(make("room_finished", room.livekit_name, at=NOW + 5))

    room.refresh_from_db()
    assert room.closed_at is not None
    assert RoomParticipant.objects.get(room=room).state == "left"
    assert len(events_of("room_closed")) == 1


def test_a_late_room_started_or_join_for_a_finished_room_does_not_reopen_it(room):
    deliver(make("room_finished", room.livekit_name, at=NOW + 5))

    assert deliver(make("room_started", room.livekit_name, at=NOW))["outcome"] == "stale"
    assert deliver(make("participant_joined", room.livekit_name, participant=participant(), at=NOW))["outcome"] == (
        "stale"
    )

    assert not Room.objects.filter(closed_at__isnull=True).exists()


def test_room_finished_of_an_older_livekit_room_does_not_close_the_current_one(room):
    room.livekit_sid = "RM_2"
    room.save()

    answer = deliver(make("room_finished", room.livekit_name, room_sid="RM_1"))

    assert answer["outcome"] == "stale"
    room.refresh_from_db()
    assert room.is_open


def test_room_finished_for_a_room_we_never_saw_is_remembered_so_its_late_join_is_stale(acme):
    livekit_name = Room.livekit_name_for(acme.tenant, "brief")

    deliver(make("room_finished", livekit_name, room_sid="RM_7", at=NOW + 3))
    answer = deliver(make("participant_joined", livekit_name, room_sid="RM_7", participant=participant()))

    assert answer["outcome"] == "stale"
    assert not Room.objects.filter(closed_at__isnull=True).exists()


def test_track_published_is_mirrored_and_announced_and_a_late_one_after_unpublish_is_stale(room):
    deliver(make("participant_joined", room.livekit_name, participant=participant()))
    track = lk_models.TrackInfo(sid="TR_1", type=lk_models.TrackType.AUDIO, source=lk_models.TrackSource.MICROPHONE)
    who = lk_models.ParticipantInfo(sid="PA_alice", identity="alice")
    published = make("track_published", room.livekit_name, participant=who, track=track)
    unpublished = make("track_unpublished", room.livekit_name, participant=who, track=track, at=NOW + 1)

    deliver(unpublished)
    assert deliver(published)["outcome"] == "stale"
    assert RoomParticipant.objects.get(room=room).tracks["TR_1"]["published"] is False

    other = lk_models.TrackInfo(sid="TR_2", type=lk_models.TrackType.AUDIO, source=lk_models.TrackSource.MICROPHONE)
    deliver(make("track_published", room.livekit_name, participant=who, track=other))
    [event] = events_of("track_published")
    assert event.data["trackSid"] == "TR_2"
    assert event.data["source"] == "MICROPHONE"
    assert RoomParticipant.objects.get(room=room).tracks["TR_2"]["published"] is True


def test_ingress_events_are_announced(room):
    info = lk_ingress.IngressInfo(
        ingress_id="IN_1",
        room_name=room.livekit_name,
        participant_identity="obs",
        state=lk_ingress.IngressState(status=lk_ingress.IngressState.Status.ENDPOINT_PUBLISHING),
    )
    deliver(lk_webhook.WebhookEvent(event="ingress_started", id="EV_in1", created_at=NOW, ingress_info=info))
    info.state.status = lk_ingress.IngressState.Status.ENDPOINT_INACTIVE
    deliver(lk_webhook.WebhookEvent(event="ingress_ended", id="EV_in2", created_at=NOW + 1, ingress_info=info))

    assert [e.data["status"] for e in events_of("ingress_started")] == ["ENDPOINT_PUBLISHING"]
    assert [e.data["ingressId"] for e in events_of("ingress_stopped")] == ["IN_1"]
    assert events_of("ingress_stopped")[0].room_key == str(room.pk)


def test_members_receive_the_rooms_events(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 0}, format="json")

    deliver(make("participant_joined", room.livekit_name, participant=participant()))

    [event] = events_of("participant_joined")
    assert event.user_ids == [acme.user_row("bob").pk]


@pytest.fixture
def member_room(acme, room):
    acme.server().put("/v1/rooms/standup/members/bob", {"powerLevel": 50}, format="json")
    return room


def test_room_finished_of_a_room_with_members_ends_its_session_and_keeps_the_room(member_room):
    deliver(make("participant_joined", member_room.livekit_name, participant=participant()))

    answer = deliver(make("room_finished", member_room.livekit_name, at=NOW + 5))

    assert answer["outcome"] == "applied"
    member_room.refresh_from_db()
    assert member_room.is_open
    assert (member_room.livekit_sid, member_room.livekit_finished_sid) == ("", "RM_1")
    assert RoomParticipant.objects.get(room=member_room).state == "left"
    assert events_of("room_closed") == []


def test_late_events_of_a_finished_session_are_stale_and_a_new_session_is_followed(member_room):
    deliver(make("room_finished", member_room.livekit_name, at=NOW + 5))

    assert deliver(make("room_started", member_room.livekit_name, at=NOW))["outcome"] == "stale"
    late_join = make("participant_joined", member_room.livekit_name, participant=participant(), at=NOW)
    assert deliver(late_join)["outcome"] == "stale"
    assert deliver(make("room_finished", member_room.livekit_name, at=NOW + 5))["outcome"] == "applied"
    assert not RoomParticipant.objects.exists()

    joined = make("participant_joined", member_room.livekit_name, room_sid="RM_2", participant=participant("carol"))
    assert deliver(joined)["outcome"] == "applied"
    member_room.refresh_from_db()
    assert member_room.livekit_sid == "RM_2"
    assert RoomParticipant.objects.get(room=member_room).state == "joined"


@pytest.mark.parametrize("kind", [lk_models.ParticipantInfo.Kind.EGRESS, lk_models.ParticipantInfo.Kind.INGRESS])
def test_egress_and_ingress_connections_are_mirrored_but_not_announced(room, kind):
    info = participant("EG_recorder", sid="PA_egress")
    info.kind = kind
    deliver(make("participant_joined", room.livekit_name, participant=info))
    deliver(make("participant_left", room.livekit_name, participant=info, at=NOW + 1))

    row = RoomParticipant.objects.get(room=room, sid="PA_egress")
    assert (row.kind, row.state) == (lk_models.ParticipantInfo.Kind.Name(kind), "left")
    assert events_of("participant_joined") == []
    assert events_of("participant_left") == []
