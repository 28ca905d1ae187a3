"""Ours: GET/DELETE /v1/recordings/{id}, GET /v1/recordings/{id}/media — server key, or a member of the room."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from recordings import services
from recordings.models import MediaEntry, Recording, RecordingEgress
from scaiwave.testing import audit_traced

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(acme, standup, local_storage) -> Recording:
    """A finished room recording with its file in local storage."""
    recording = Recording.objects.create(
        tenant=acme.tenant,
        room=standup,
        status=Recording.Status.READY,
        livekit_room=standup.livekit_name,
        storage_key="recordings/standup/20261121T120000000Z.mp4",
    )
    egress = RecordingEgress.objects.create(
        recording=recording,
        egress_id="EG_readyreadyre",
        kind=RecordingEgress.Kind.ROOM_COMPOSITE,
        status=RecordingEgress.Status.COMPLETE,
        file_key=recording.storage_key,
    )
    entry = services.media_entry_create_from_stream(
        tenant=acme.tenant,
        key=recording.storage_key,
        stream=io.BytesIO(b"\x00" * 2048),
        content_type="video/mp4",
        source=MediaEntry.Source.EGRESS,
        recording=recording,
    )
    entry.egress = egress
    entry.save()
    return recording


def test_the_server_sees_state_and_media(acme, ready):
    body = acme.server().get(f"/v1/recordings/{ready.pk}").json()
    assert body["id"] == ready.pk and body["status"] == "ready" and body["roomId"] == "standup"
    assert body["egressId"] == "EG_readyreadyre"
    [media] = body["media"]
    assert media["size"] == 2048 and media["contentType"] == "video/mp4"
    assert "/v1/media/" in media["url"] and "sig=" in media["url"]


def test_a_recording_is_also_found_by_its_egress_id(acme, ready):
    assert acme.server().get("/v1/recordings/EG_readyreadyre").json()["id"] == ready.pk


def test_a_member_of_the_room_sees_it(acme, ready):
    assert acme.user("alice").get(f"/v1/recordings/{ready.pk}").status_code == 200


def test_an_outsider_and_another_tenant_get_404(acme, globex, ready):
    acme.user_row("mallory")
    assert acme.user("mallory").get(f"/v1/recordings/{ready.pk}").status_code == 404
    assert globex.server().get(f"/v1/recordings/{ready.pk}").status_code == 404
    assert APIClient().get(f"/v1/recordings/{ready.pk}").status_code == 401


def test_media_redirects_to_a_signed_download(acme, ready):
    response = acme.user("alice").get(f"/v1/recordings/{ready.pk}/media")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    download = APIClient().get(f"{location.path}?{location.query}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"\x00" * 2048


@pytest.mark.parametrize(
    ("digits_at", "expected"), [("start", 416), ("end", 206), ("suffix", 206)], ids=["start", "end", "suffix"]
)
def test_a_range_with_thousands_of_digits_is_answered_not_a_500(acme, ready, digits_at, expected):
    huge = "9" * 5_000  # int() refuses more than 4,300 digits
    header = {"start": f"bytes={huge}-", "end": f"bytes=0-{huge}", "suffix": f"bytes=-{huge}"}[digits_at]
    location = urlsplit(acme.user("alice").get(f"/v1/recordings/{ready.pk}/media")["Location"])
    download = APIClient().get(f"{location.path}?{location.query}", HTTP_RANGE=header)
    assert download.status_code == expected
    if expected == 206:
        assert download["Content-Range"] == "bytes 0-2047/2048"


def test_a_tampered_or_expired_link_is_refused(acme, ready):
    entry = MediaEntry.objects.get(recording=ready)
    assert APIClient().get(f"/v1/media/{entry.pk}?expires=9999999999&sig=forged").status_code == 403
    from recordings.storage import media_signature

    assert APIClient().get(f"/v1/media/{entry.pk}?expires=1&sig={media_signature(entry.pk, 1)}").status_code == 403


def test_a_member_below_power_50_may_not_delete(acme, ready):
    response = acme.user("alice").delete(f"/v1/recordings/{ready.pk}")
    assert response.status_code == 403
    assert Recording.objects.filter(pk=ready.pk).exists()


def test_delete_removes_the_objects_then_the_rows(acme, ready):
    key = ready.storage_key
    assert default_storage.exists(key)

    response = acme.user("dave").delete(f"/v1/recordings/{ready.pk}")

    assert response.status_code == 204
    assert not default_storage.exists(key)
    assert not Recording.objects.filter(pk=ready.pk).exists() and not MediaEntry.objects.exists()


def test_a_running_recording_cannot_be_deleted(acme, ready):
    Recording.objects.filter(pk=ready.pk).update(status=Recording.Status.RECORDING)
    response = acme.server().delete(f"/v1/recordings/{ready.pk}")
    assert response.status_code == 409 and response.json()["code"] == "recording_in_progress"


def test_a_recording_without_a_file_has_no_media_to_redirect_to(acme, ready):
    MediaEntry.objects.all().delete()
    response = acme.server().get(f"/v1/recordings/{ready.pk}/media")
    assert response.status_code == 409 and response.json()["code"] == "recording_not_ready"


def test_a_delete_is_recorded_with_who_did_it(acme, ready, caplog):
    caplog.set_level("INFO", logger="scaiwave.audit")

    assert acme.user("dave").delete(f"/v1/recordings/{ready.pk}").status_code == 204

    data = audit_traced(caplog, "recording_deleted", "user:dave")
    assert data["id"] == ready.pk and data["roomId"] == "standup"
