"""The dashboard on the admin index (figures that link to their filtered lists) and the call timeline SVG."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from calls.models import Call
from recordings.models import Recording
from scaiwave.admin_dashboard import dashboard_figures, queue_depth
from scaiwave.admin_timeline import call_timeline_svg
from scaiwave.tests.admin_data import logged_in, make_call, make_operator
from webhooks.models.intake import LiveKitEvent

pytestmark = pytest.mark.django_db


def _figure(label: str):
    return next(f for f in dashboard_figures() if f.label == label)


def test_the_dashboard_counts_live_calls_and_links_to_exactly_them(acme):
    live = [make_call(acme.tenant, status=s) for s in (Call.Status.ACTIVE, Call.Status.RINGING)]
    over = make_call(acme.tenant)
    client = logged_in(make_operator())

    index = client.get("/admin/").content.decode()
    figure = _figure("Live calls now")
    assert figure.value == 2
    assert 'id="dashboard"' in index and unescape(index).count(figure.url) >= 1
    listing = client.get(figure.url).content.decode()
    assert all(call.pk in listing for call in live) and over.pk not in listing
    connected = _figure("Participants in calls now")
    assert connected.value == 4  # two each, still connected


def test_the_dashboard_counts_recent_failed_recordings_only(acme):
    call = make_call(acme.tenant)
    recent = Recording.objects.create(
        tenant=acme.tenant,
        room=call.room,
        status=Recording.Status.FAILED,
        livekit_room="x",
        storage_key="a",
        finished_at=timezone.now() - timedelta(hours=1),
    )
    old = Recording.objects.create(
        tenant=acme.tenant,
        room=call.room,
        status=Recording.Status.ABORTED,
        livekit_room="x",
        storage_key="b",
        finished_at=timezone.now() - timedelta(days=3),
    )
    figure = _figure("Failed recordings (24 h)")
    assert figure.value == 1 and figure.alarming
    listing = logged_in(make_operator()).get(figure.url).content.decode()
    assert recent.pk in listing and old.pk not in listing


def test_the_dashboard_links_failed_livekit_events(acme):
    LiveKitEvent.objects.create(
        event_id="EV_bad", event="room_started", created_at=timezone.now(), payload={}, outcome="failed"
    )
    figure = _figure("LiveKit events that failed to apply (24 h)")
    assert figure.value == 1
    assert b"room_started" in logged_in(make_operator()).get(figure.url).content


def test_the_dashboard_says_when_deliveries_are_not_available_or_counts_them(acme):
    figure = _figure("Failed webhook deliveries (24 h)")
    if figure.value is None:
        assert "not available" in figure.note
    else:
        assert figure.value == 0 and figure.url
        assert logged_in(make_operator()).get(figure.url).status_code == 200


def test_queue_depth_is_the_length_of_the_celery_queues_on_redis(settings):
    if not django_settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    settings.CELERY_TASK_DEFAULT_QUEUE = "admin-test-default"
    settings.CELERY_TASK_ROUTES = {"x.*": {"queue": "admin-test-other"}}
    client.delete("admin-test-default", "admin-test-other")
    client.rpush("admin-test-default", "a", "b")
    client.rpush("admin-test-other", "c")
    try:
        figure = queue_depth()
    finally:
        client.delete("admin-test-default", "admin-test-other")
    assert figure.value == 3
    assert "admin-test-default: 2" in figure.note and "admin-test-other: 1" in figure.note


def test_queue_depth_counts_the_filesystem_brokers_waiting_messages(settings, tmp_path: Path):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for name in ("1.msg", "2.msg"):
        (tmp_path / name).write_text("{}")
    assert queue_depth().value == 2


def test_queue_depth_says_when_redis_does_not_answer(settings):
    from livekit_emulator.testing import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    figure = queue_depth()
    assert figure.value is None and "Redis did not answer" in figure.note


# --- The timeline chart --------------------------------------------------------------------------


def _event(call: Call, kind: str, identity: str, at) -> None:
    LiveKitEvent.objects.create(
        event_id=f"EV_{kind}_{identity}_{at.timestamp()}",
        event=kind,
        room_name=call.livekit_room,
        participant_identity=identity,
        created_at=at,
        payload={},
    )


def test_the_timeline_draws_one_bar_per_connection_from_livekits_events(acme):
    call = make_call(acme.tenant, users=3)
    alice, bob, carol = call.participants.select_related("user").order_by("id")
    carol.joined_at = None
    carol.save()
    start = call.created_at
    _event(call, "participant_joined", alice.livekit_identity, start + timedelta(seconds=10))
    _event(call, "participant_left", alice.livekit_identity, start + timedelta(seconds=60))
    _event(call, "participant_joined", alice.livekit_identity, start + timedelta(seconds=90))
    _event(call, "participant_left", alice.livekit_identity, start + timedelta(seconds=200))

    svg = str(call_timeline_svg(call))

    assert svg.startswith('<svg class="call-timeline"')
    assert svg.count(f'data-participant="{alice.user.display_name}"') == 2  # dropped and came back
    assert svg.count(f'data-participant="{bob.user.display_name}"') == 1  # no events: from the row
    assert "never connected" in svg  # carol


def test_the_timeline_escapes_names_and_marks_who_is_still_connected(acme):
    call = make_call(acme.tenant, status=Call.Status.ACTIVE, users=2)
    person = call.participants.select_related("user").first()
    assert person is not None
    person.user.display_name = "<script>alert(1)</script>"
    person.user.save()

    svg = str(call_timeline_svg(call))

    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "url(#connected-now)" in svg and "to now" in svg


def test_every_dashboard_link_opens_its_filtered_list(acme):
    client = logged_in(make_operator())
    for figure in dashboard_figures():
        if figure.url:
            response = client.get(figure.url)
            # 200, not the 302 to "?e=1" Django answers for a lookup it does not allow
            assert response.status_code == 200, figure
