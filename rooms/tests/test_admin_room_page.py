"""The room's admin page shows its calls: calls run in LiveKit rooms of their own, so the room's own
LiveKit room being empty says nothing about who is talking in the room."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, CallParticipant
from rooms import services as room_services
from scaiwave.tests.admin_data import logged_in, make_operator

pytestmark = pytest.mark.django_db


def test_the_room_page_shows_its_live_call_with_who_is_connected_and_recent_calls(acme, livekit):
    room = room_services.room_create(tenant=acme.tenant, name="standup")
    now = timezone.now()
    people = [acme.user_row(sub) for sub in ("alice", "bob", "carol", "dave")]
    earlier = Call.objects.create(
        tenant=acme.tenant,
        room=room,
        type="audio",
        status="ended",
        initiator=people[0],
        created_at=now - timedelta(hours=1),
        ended_at=now - timedelta(minutes=50),
        ring_expires_at=now - timedelta(hours=1),
    )
    live = Call.objects.create(
        tenant=acme.tenant,
        room=room,
        type="video",
        status="active",
        initiator=people[0],
        created_at=now,
        started_at=now,
        ring_expires_at=now,
    )
    for person in people[:3]:
        CallParticipant.objects.create(call=live, user=person, joined_at=now)
    CallParticipant.objects.create(call=live, user=people[3], joined_at=now, left_at=now)

    page = logged_in(make_operator()).get(f"/admin/rooms/room/{room.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert live.pk in html and earlier.pk in html
    assert html.index(live.pk) < html.index(earlier.pk)
    assert html.count('class="call-participant"') == 3
    for sub in ("alice", "bob", "carol"):
        assert f'<span class="call-participant">{sub}</span>' in html
    assert "Nobody is connected." not in html
