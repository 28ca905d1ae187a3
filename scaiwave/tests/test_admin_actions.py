"""Admin actions: confirmed first, run through the same services as the API, logged in the admin log, and
refused to the read-only support group. LiveKit is the emulator."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from calls.models import Call
from recordings import services as recording_services
from recordings.models import MediaEntry, Recording, RecordingEgress
from rooms import services as room_services
from rooms.models import RoomBan
from rooms.testing import livekit, livekit_emulator  # noqa: F401 - fixtures
from scaiwave.models import Event
from scaiwave.tests.admin_data import logged_in, make_call, make_operator, make_support

pytestmark = pytest.mark.django_db


def _act(client, url: str, action: str, pks: list[str], *, confirm: bool):
    data = {"action": action, "_selected_action": pks}
    if confirm:
        data["post"] = "yes"
    return client.post(url, data, follow=True)


# --- End calls -------------------------------------------------------------------------------------


def test_ending_a_call_asks_for_confirmation_first(acme):
    call = make_call(acme.tenant, status=Call.Status.ACTIVE)
    page = _act(logged_in(make_operator()), "/admin/calls/call/", "end_calls", [call.pk], confirm=False)

    assert page.status_code == 200
    assert b"Yes, I\xe2\x80\x99m sure" in page.content and call.pk.encode() in page.content
    assert Call.objects.get(pk=call.pk).status == Call.Status.ACTIVE
    assert not LogEntry.objects.exists()


def test_ending_a_call_goes_through_the_service_and_is_logged(acme):
    operator = make_operator()
    live = make_call(acme.tenant, status=Call.Status.ACTIVE)
    over = make_call(acme.tenant)

    page = _act(logged_in(operator), "/admin/calls/call/", "end_calls", [live.pk, over.pk], confirm=True)

    live.refresh_from_db()
    assert live.status == Call.Status.ENDED and live.end_reason == "ended_by_operator"
    assert all(p.left_at is not None for p in live.participants.all())
    assert Event.objects.filter(type="swp.call.ended", data__status="ended").count() == 1
    assert b"End calls: done for 1, nothing to do for 1" in page.content
    assert f"{live.pk} (active): ended by an operator".encode() in page.content
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id) == (operator.pk, live.pk)
    assert "End calls" in entry.get_change_message()


# --- The support group ------------------------------------------------------------------------------


def test_the_support_group_sees_calls_but_no_action(acme):
    call = make_call(acme.tenant, status=Call.Status.ACTIVE)
    client = logged_in(make_support())

    listing = client.get("/admin/calls/call/")
    assert listing.status_code == 200 and call.pk.encode() in listing.content
    assert b'name="action"' not in listing.content
    detail = client.get(f"/admin/calls/call/{call.pk}/change/")
    assert detail.status_code == 200 and b'<svg class="call-timeline"' in detail.content
    assert b"End this call" not in detail.content
    assert b'type="submit"' not in detail.content.split(b'id="content-main"')[1].split(b"</form>")[0]
    for url in ("/admin/recordings/recording/", "/admin/scaiwave/tenant/", "/admin/rooms/room/"):
        page = client.get(url)
        assert page.status_code == 200 and b'name="action"' not in page.content, url


def test_a_forged_action_from_the_support_group_changes_nothing(acme):
    call = make_call(acme.tenant, status=Call.Status.ACTIVE)
    client = logged_in(make_support())

    _act(client, "/admin/calls/call/", "end_calls", [call.pk], confirm=True)
    _act(client, "/admin/scaiwave/tenant/", "rotate_secret", [str(acme.tenant.pk)], confirm=True)

    assert Call.objects.get(pk=call.pk).status == Call.Status.ACTIVE
    assert acme.server().get("/v1/rooms").status_code != 401  # the secret still works
    assert not LogEntry.objects.exists()


def test_the_support_group_cannot_remove_a_participant(acme):
    from rooms.models import Room

    room = Room.objects.create(tenant=acme.tenant, name="r", livekit_name=Room.livekit_name_for(acme.tenant, "r"))
    client = logged_in(make_support())
    url = f"/admin/rooms/room/{room.pk}/participants/remove/"
    assert client.get(url, {"identity": "alice"}).status_code == 403
    assert client.post(url, {"identity": "alice"}).status_code == 403


def test_the_support_group_holds_view_permissions_only(db):
    from scaiwave.admin_support import support_group_sync

    group = support_group_sync()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_call", "view_recording", "view_room", "view_tenant", "view_livekitevent"} <= codenames
    assert all(codename.startswith("view_") for codename in codenames)
    assert support_group_sync().permissions.count() == len(codenames)  # idempotent


# --- Tenant secret --------------------------------------------------------------------------------


def test_rotating_a_tenant_secret_shows_the_new_one_once_and_the_old_one_stops(
    acme, django_capture_on_commit_callbacks
):
    operator = make_operator()
    old = acme.server()
    assert old.get("/v1/rooms").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        page = _act(
            logged_in(operator), "/admin/scaiwave/tenant/", "rotate_secret", [str(acme.tenant.pk)], confirm=True
        )

    assert b"New API secret for acme" in page.content
    assert old.get("/v1/rooms").status_code == 401
    assert LogEntry.objects.get().object_id == str(acme.tenant.pk)


# --- Participants (LiveKit through the emulator) --------------------------------------------------


def test_removing_a_participant_disconnects_them_in_livekit_bans_them_and_is_logged(acme, livekit):  # noqa: F811
    operator = make_operator()
    room = room_services.room_create(tenant=acme.tenant, name="townhall")
    livekit.control.connect(livekit.token("alice", room.livekit_name))
    client = logged_in(operator)

    page = client.get(f"/admin/rooms/room/{room.pk}/change/")
    assert b"alice" in page.content and b"Remove\xe2\x80\xa6" in page.content
    url = f"/admin/rooms/room/{room.pk}/participants/remove/"
    confirm = client.get(url, {"identity": "alice"})
    assert confirm.status_code == 200 and b"Yes, remove" in confirm.content
    done = client.post(url, {"identity": "alice"}, follow=True)

    assert b"Removed alice from townhall" in done.content
    assert [p["identity"] for p in room_services.participant_list(room=room)] == []
    assert RoomBan.objects.filter(room_name="townhall", identity="alice").exists()
    assert "Removed participant alice" in LogEntry.objects.get().get_change_message()


def test_removing_someone_who_is_not_there_says_so(acme, livekit):  # noqa: F811
    room = room_services.room_create(tenant=acme.tenant, name="townhall")
    client = logged_in(make_operator())

    done = client.post(f"/admin/rooms/room/{room.pk}/participants/remove/", {"identity": "ghost"}, follow=True)

    assert b"No participant" in done.content
    assert not LogEntry.objects.exists()


# --- Recordings -----------------------------------------------------------------------------------


def test_stopping_a_recording_asks_livekit_through_the_service(acme, livekit):  # noqa: F811
    room = room_services.room_create(tenant=acme.tenant, name="townhall")
    livekit.control.connect(livekit.token("alice", room.livekit_name, can_publish=True))
    recording, _ = recording_services.recording_start(room=room, requested_by=None)
    assert recording.is_active
    client = logged_in(make_operator())

    _act(client, "/admin/recordings/recording/", "stop_recordings", [recording.pk], confirm=True)

    recording.refresh_from_db()
    assert not recording.is_active
    egress_id = recording.egresses.get().egress_id
    assert livekit.control.egress(egress_id)["status"] != "EGRESS_ACTIVE"
    assert "Stop recordings" in LogEntry.objects.get().get_change_message()


def _tone_wav(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        frames = int(8000 * seconds)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) for i in range(frames)))
    return buffer.getvalue()


def test_retrying_the_registration_registers_a_file_the_worker_gave_up_on(acme, settings, tmp_path: Path):
    settings.S3_BUCKET = ""
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    call = make_call(acme.tenant)
    key = f"recordings/{call.pk}/20261121T120000000Z.wav"
    default_storage.save(key, ContentFile(_tone_wav()))
    stuck = Recording.objects.create(
        tenant=acme.tenant,
        room=call.room,
        call=call,
        status=Recording.Status.PROCESSING,
        livekit_room=call.livekit_room,
        storage_key=key,
    )
    RecordingEgress.objects.create(
        recording=stuck,
        egress_id="EG_stuck",
        kind=RecordingEgress.Kind.ROOM_COMPOSITE,
        status=RecordingEgress.Status.COMPLETE,
        file_key=key,
    )
    client = logged_in(make_operator())

    page = _act(client, "/admin/recordings/recording/", "retry_registration", [stuck.pk], confirm=True)

    stuck.refresh_from_db()
    assert stuck.status == Recording.Status.READY
    entry = MediaEntry.objects.get(recording=stuck)
    assert entry.size > 0 and entry.duration_seconds and entry.duration_seconds > 0.4
    assert b"now ready" in page.content
    detail = client.get(f"/admin/recordings/recording/{stuck.pk}/change/")
    assert b'<audio class="media-player" controls' in detail.content


def test_retrying_the_registration_of_a_finished_recording_does_nothing(acme):
    call = make_call(acme.tenant)
    done = Recording.objects.create(
        tenant=acme.tenant, room=call.room, call=call, status=Recording.Status.READY, livekit_room="x", storage_key="k"
    )

    page = _act(
        logged_in(make_operator()), "/admin/recordings/recording/", "retry_registration", [done.pk], confirm=True
    )

    assert b"nothing to do for 1" in page.content
    assert not LogEntry.objects.exists()
