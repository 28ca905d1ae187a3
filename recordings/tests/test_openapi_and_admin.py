"""The recording endpoints in the OpenAPI document, and the admin pages (failures visible to operators)."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from recordings import services
from recordings.models import MediaEntry, Recording, RecordingEgress

pytestmark = pytest.mark.django_db

PATHS = {
    "/v1/calls/{call_id}/recording/start": ("post", {"201", "403", "404", "409", "502"}),
    "/v1/calls/{call_id}/recording/stop": ("post", {"200", "403", "404", "502"}),
    "/v1/calls/{call_id}/recordings": ("get", {"200", "403", "404"}),
    "/v1/rooms/{room_id}/recording/start": ("post", {"200", "201", "403", "404", "502"}),
    "/v1/rooms/{room_id}/recording/stop": ("post", {"200", "404", "502"}),
    "/v1/rooms/{room_id}/recording": ("get", {"200", "404"}),
    "/v1/recordings/{recording_id}": ("get", {"200", "404"}),
    "/v1/recordings/{recording_id}/media": ("get", {"302", "404", "409"}),
    "/v1/media/{media_id}": ("get", {"200", "206", "403", "404", "416"}),
}


def test_every_recording_endpoint_is_in_the_openapi_with_its_responses():
    schema = APIClient().get("/v1/schema", HTTP_ACCEPT="application/json").json()
    for path, (method, statuses) in PATHS.items():
        responses = set(schema["paths"][path][method]["responses"])
        assert statuses <= responses, (path, statuses - responses)
    assert "204" in schema["paths"]["/v1/recordings/{recording_id}"]["delete"]["responses"]


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(user)
    return client


@pytest.fixture
def failed(acme, standup) -> Recording:
    recording = Recording.objects.create(
        tenant=acme.tenant,
        room=standup,
        status=Recording.Status.FAILED,
        failure_reason="failed to upload to s3: AccessDenied",
        livekit_room=standup.livekit_name,
        storage_key="recordings/standup/20261121T120000000Z.mp4",
    )
    RecordingEgress.objects.create(
        recording=recording,
        egress_id="EG_failedfaile",
        kind=RecordingEgress.Kind.ROOM_COMPOSITE,
        status=RecordingEgress.Status.FAILED,
        error="failed to upload to s3: AccessDenied",
    )
    return recording


def test_the_recording_admin_shows_livekits_failure_text(operator, failed):
    listing = operator.get("/admin/recordings/recording/?status=failed")
    assert listing.status_code == 200 and b"AccessDenied" in listing.content
    page = operator.get(f"/admin/recordings/recording/{quote(failed.pk)}/change/")
    assert page.status_code == 200
    assert b"EG_failedfaile" in page.content and b"failed to upload to s3" in page.content


def test_the_media_entry_admin_deletes_the_object_first(operator, acme, local_storage):
    entry = services.media_entry_create_from_stream(
        tenant=acme.tenant, key="uploads/x.wav", stream=io.BytesIO(b"abc"), content_type="audio/wav", source="upload"
    )
    assert operator.get("/admin/recordings/mediaentry/").status_code == 200
    assert operator.get(f"/admin/recordings/mediaentry/{quote(entry.pk)}/change/").status_code == 200
    response = operator.post(f"/admin/recordings/mediaentry/{quote(entry.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not MediaEntry.objects.exists() and not (local_storage / "uploads" / "x.wav").exists()
