"""Every admin list and detail page opens, and list pages cost the same number of queries for 3 rows as for 30."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Call
from recordings.models import MediaEntry, Recording
from rooms.models import Room, RoomParticipant
from scaiwave.tests.admin_data import fill, logged_in, make_operator
from webhooks.models.intake import LiveKitEvent

pytestmark = pytest.mark.django_db

LIST_PAGES = [
    "/admin/",
    "/admin/scaiwave/tenant/",
    "/admin/scaiwave/tenantuser/",
    "/admin/scaiwave/event/",
    "/admin/rooms/room/",
    "/admin/rooms/roomparticipant/",
    "/admin/rooms/roomban/",
    "/admin/calls/call/",
    "/admin/calls/timelineentry/",
    "/admin/recordings/recording/",
    "/admin/recordings/mediaentry/",
    "/admin/webhooks/livekitevent/",
]
# A page's queries: session, user, permissions, the rows, the capped count, filter choices (tenants), ...
MAX_QUERIES = 16


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def test_every_list_page_costs_the_same_queries_for_3_rows_as_for_30(acme):
    client = logged_in(make_operator())
    fill(acme.tenant, 3)
    few = {url: _queries(client, url) for url in LIST_PAGES}
    fill(acme.tenant, 27)
    many = {url: _queries(client, url) for url in LIST_PAGES}
    assert many == few
    assert max(many.values()) <= MAX_QUERIES, many


def test_every_list_page_opens_with_rows(acme):
    client = logged_in(make_operator())
    fill(acme.tenant, 2)
    for url in LIST_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url


def test_every_detail_page_opens(acme, settings):
    settings.LIVEKIT_URL = ""  # the room page asks LiveKit; without one it says so and still shows the room
    client = logged_in(make_operator())
    fill(acme.tenant, 1)
    call = Call.objects.get()
    pages = [
        f"/admin/scaiwave/tenant/{quote(acme.tenant.pk)}/change/",
        f"/admin/scaiwave/tenantuser/{call.initiator_id}/change/",
        f"/admin/rooms/room/{call.room_id}/change/",
        f"/admin/rooms/roomparticipant/{RoomParticipant.objects.get().pk}/change/",
        f"/admin/calls/call/{call.pk}/change/",
        f"/admin/recordings/recording/{quote(Recording.objects.get().pk)}/change/",
        f"/admin/recordings/mediaentry/{quote(MediaEntry.objects.get().pk)}/change/",
        f"/admin/webhooks/livekitevent/{LiveKitEvent.objects.get().pk}/change/",
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url


def test_the_call_list_searches_by_id_room_and_participant(acme):
    from scaiwave.tests.admin_data import make_call

    client = logged_in(make_operator())
    wanted, other = make_call(acme.tenant), make_call(acme.tenant)
    participant = wanted.participants.order_by("id").last()
    assert participant is not None
    for term in (wanted.pk, wanted.room.name, participant.user.external_id):
        page = client.get("/admin/calls/call/", {"q": term}).content.decode()
        assert wanted.pk in page and other.pk not in page, term


def test_the_call_list_filters_by_status_type_tenant_and_date(acme, globex):
    from scaiwave.tests.admin_data import make_call

    client = logged_in(make_operator())
    live = make_call(acme.tenant, status=Call.Status.ACTIVE)
    ended = make_call(globex.tenant)
    page = client.get("/admin/calls/call/", {"status__exact": "active"}).content.decode()
    assert live.pk in page and ended.pk not in page
    page = client.get("/admin/calls/call/", {"tenant__id__exact": globex.tenant.pk}).content.decode()
    assert ended.pk in page and live.pk not in page
    page = client.get("/admin/calls/call/", {"type__exact": "video"}).content.decode()
    assert live.pk not in page and ended.pk not in page
    page = client.get(
        "/admin/calls/call/",
        {"created_at__gte": "2000-01-01 00:00:00+00:00", "created_at__lt": "2000-01-02 00:00:00+00:00"},
    )
    assert live.pk not in page.content.decode()


def test_the_call_page_shows_participants_and_the_timeline_chart(acme):
    from scaiwave.tests.admin_data import make_call

    client = logged_in(make_operator())
    call = make_call(acme.tenant, status=Call.Status.ACTIVE, users=2)
    page = client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    assert '<svg class="call-timeline"' in page
    assert page.count('class="connected"') == 2
    assert "End this call…" in page
    for participant in call.participants.select_related("user"):
        assert participant.user.external_id in page


def test_the_recording_page_plays_the_registered_file(acme):
    client = logged_in(make_operator())
    fill(acme.tenant, 1)
    recording = Recording.objects.get()
    page = client.get(f"/admin/recordings/recording/{quote(recording.pk)}/change/").content.decode()
    entry = MediaEntry.objects.get()
    assert '<video class="media-player" controls' in page
    assert f"/v1/media/{entry.pk}?expires=" in page or "X-Amz-Signature" in page


def test_the_room_page_says_when_livekit_does_not_answer(acme, settings):
    from livekit_emulator.testing import free_port

    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    settings.LIVEKIT_API_KEY = "devkey"
    settings.LIVEKIT_API_SECRET = "a-secret-long-enough-for-hs256-signatures"
    settings.LIVEKIT_TIMEOUT = 0.5
    room = Room.objects.create(
        tenant=acme.tenant, name="standup", livekit_name=Room.livekit_name_for(acme.tenant, "standup")
    )
    client = logged_in(make_operator())
    response = client.get(f"/admin/rooms/room/{room.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Could not ask LiveKit for the room" in page
    assert "LiveKit did not answer" in page
