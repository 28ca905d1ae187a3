"""Rows and staff personas for the admin tests: an operator (superuser), a support user (view-only group),
and `fill(tenant, n)` which writes n rows of everything the admin lists."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from calls.models import Call, CallParticipant, TimelineEntry
from recordings.models import MediaEntry, Recording, RecordingEgress
from rooms.models import Room, RoomBan, RoomMember, RoomParticipant
from scaiwave.admin_support import support_group_sync
from scaiwave.models import Event, Tenant, TenantUser
from webhooks.models.intake import LiveKitEvent

PASSWORD = "pw-admin-tests-123456"
_serial = count()


def make_operator(username: str = "ops") -> User:
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


def make_support(username: str = "support") -> User:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.groups.add(support_group_sync())
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_call(tenant: Tenant, *, status: str = Call.Status.ENDED, users: int = 2, room: Room | None = None) -> Call:
    """A call with `users` participants who joined (and left, unless the call is live)."""
    n = next(_serial)
    if room is None:
        name = f"room-{n}"
        room = Room.objects.create(tenant=tenant, name=name, livekit_name=Room.livekit_name_for(tenant, name))
    people = [
        TenantUser.objects.get_or_create(
            tenant=tenant, external_id=f"user-{n}-{i}", defaults={"display_name": f"U{i}"}
        )[0]
        for i in range(users)
    ]
    for person in people:
        RoomMember.objects.get_or_create(room=room, user=person)
    now = timezone.now()
    live = status in Call.LIVE_STATUSES
    call = Call.objects.create(
        tenant=tenant,
        room=room,
        type=Call.Type.AUDIO,
        status=status,
        initiator=people[0],
        created_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=4),
        ended_at=None if live else now,
        end_reason="" if live else "ended_by_user",
        ring_expires_at=now + timedelta(seconds=30),
    )
    for i, person in enumerate(people):
        CallParticipant.objects.create(
            call=call,
            user=person,
            joined_at=now - timedelta(minutes=4 - i),
            left_at=None if live else now,
            livekit_identity=person.external_id,
        )
    return call


def fill(tenant: Tenant, n: int) -> None:
    """n rows of every model the admin lists, each with its foreign keys set (so a missing
    select_related shows up as queries growing with n)."""
    for _ in range(n):
        call = make_call(tenant)
        room = call.room
        serial = next(_serial)
        RoomParticipant.objects.create(room=room, sid=f"PA_{serial}", identity=f"id-{serial}", joined_at=timezone.now())
        RoomBan.objects.create(
            tenant=tenant, room_name=room.name, identity=f"id-{serial}", until=timezone.now() + timedelta(minutes=1)
        )
        TimelineEntry.objects.create(tenant=tenant, room=room, kind=TimelineEntry.Kind.NOTE, call=call)
        recording = Recording.objects.create(
            tenant=tenant,
            room=room,
            call=call,
            status=Recording.Status.READY,
            livekit_room=call.livekit_room,
            storage_key=f"recordings/{call.pk}/x.mp4",
            requested_by=call.initiator,
        )
        egress = RecordingEgress.objects.create(
            recording=recording, egress_id=f"EG_{serial}", kind=RecordingEgress.Kind.ROOM_COMPOSITE
        )
        MediaEntry.objects.create(
            tenant=tenant,
            key=f"recordings/{call.pk}/{serial}.mp4",
            content_type="video/mp4",
            size=10,
            sha256="0" * 64,
            source=MediaEntry.Source.EGRESS,
            recording=recording,
            egress=egress,
        )
        Event.objects.create(tenant=tenant, type="swp.call.ended", data={"call_id": call.pk})
        LiveKitEvent.objects.create(
            event_id=f"EV_{serial}",
            event="participant_joined",
            room_name=call.livekit_room,
            participant_identity=call.initiator.external_id,
            created_at=timezone.now(),
            payload={},
            outcome=LiveKitEvent.Outcome.APPLIED,
        )
