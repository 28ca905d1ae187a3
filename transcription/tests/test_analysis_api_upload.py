"""POST /api/calls/analyze: the upload streams to storage, is sniffed and probed, and is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from recordings.models import MediaEntry
from transcription.models import Transcription, UploadedCall
from transcription.tests.analysis_support import stored_files, tone_wav, upload

pytestmark = pytest.mark.django_db


def _nothing_stored(root: Path) -> None:
    assert stored_files(root) == []
    assert not MediaEntry.objects.exists()
    assert not UploadedCall.objects.exists()


def test_an_upload_is_accepted_queued_and_stored_as_a_media_entry(acme, media_root: Path) -> None:
    content = tone_wav(channels=2)
    response = upload(
        acme.user("alice", name="Alice"),
        content,
        metadata={
            "title": "Quarterly review",
            "contactName": "Ravi",
            "contactId": "contacts:42",
            "phoneNumber": "+91 98765 43210",
            "organization": "Acme",
            "direction": "OUTGOING",
            "recordedAt": "2026-05-29T13:00:00Z",
            "durationSeconds": 240,
        },
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"callId", "status"} and body["status"] == "QUEUED"
    call = UploadedCall.objects.select_related("media_entry", "transcription", "owner").get(pk=body["callId"])
    assert call.owner.external_id == "alice"
    assert (call.title, call.contact_name, call.organization, call.direction) == (
        "Quarterly review",
        "Ravi",
        "Acme",
        "OUTGOING",
    )
    assert call.duration_seconds == 240
    entry = call.media_entry
    assert entry is not None and entry.source == MediaEntry.Source.UPLOAD and entry.size == len(content)
    assert entry.content_type == "audio/wav" and entry.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert default_storage.open(entry.key).read() == content
    assert call.transcription is not None and call.transcription.status == Transcription.Status.QUEUED


def test_the_title_part_is_used_when_metadata_has_none(acme, media_root: Path) -> None:
    response = upload(acme.user("alice"), tone_wav(), title="From the title part")
    assert response.status_code == 202
    assert UploadedCall.objects.get(pk=response.json()["callId"]).title == "From the title part"


def test_upload_without_credentials_is_401_auth_invalid(media_root: Path) -> None:
    from rest_framework.test import APIClient

    response = upload(APIClient(), tone_wav())
    assert response.status_code == 401
    assert response.json()["code"] == "auth_invalid"
    _nothing_stored(media_root)


def test_upload_with_the_server_key_is_forbidden_it_is_a_user_surface(acme, media_root: Path) -> None:
    response = upload(acme.server(), tone_wav())
    assert response.status_code == 403
    _nothing_stored(media_root)


def test_upload_without_a_file_is_400_naming_the_file(acme, media_root: Path) -> None:
    response = acme.user("alice").post("/api/calls/analyze", {"metadata": "{}"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert "file" in response.json()["errors"]


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ("{not json", "metadata"),
        ("[1, 2]", "metadata"),
        ({"contactNme": "Ravi"}, "metadata.contactNme"),
        ({"durationSeconds": "long"}, "metadata.durationSeconds"),
        ({"contactName": 42}, "metadata.contactName"),
        ({"direction": "SIDEWAYS"}, "metadata.direction"),
        ({"recordedAt": "yesterday"}, "metadata.recordedAt"),
    ],
)
def test_bad_metadata_is_400_naming_the_field_and_nothing_is_kept(acme, media_root: Path, metadata, field) -> None:
    response = upload(acme.user("alice"), tone_wav(), metadata=metadata)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_failed"
    assert field in response.json()["errors"]
    _nothing_stored(media_root)


def test_a_text_file_named_mp3_is_415_and_nothing_is_stored(acme, media_root: Path) -> None:
    response = upload(acme.user("alice"), b"This is not audio at all, just notes.\n" * 50, name="call.mp3")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    _nothing_stored(media_root)


def test_a_file_with_audio_magic_that_does_not_decode_is_415_and_removed(acme, media_root: Path) -> None:
    fake = b"RIFF\x24\x00\x00\x00WAVE" + b"\x00garbage" * 500
    response = upload(acme.user("alice"), fake, name="call.wav")
    assert response.status_code == 415
    _nothing_stored(media_root)


def test_real_audio_under_a_wrong_name_is_accepted_by_its_content(acme, media_root: Path) -> None:
    response = upload(acme.user("alice"), tone_wav(), name="notes.txt")
    assert response.status_code == 202
    assert MediaEntry.objects.get().key.endswith(".wav")


def test_a_file_over_the_limit_while_streaming_is_413_and_the_partial_object_removed(
    acme, media_root: Path, settings
) -> None:
    settings.MAX_FILE_SIZE = 100_000
    # 120 kB: inside the Content-Length allowance (limit + multipart overhead), so the stream check catches it.
    response = upload(acme.user("alice"), tone_wav(7.4))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    _nothing_stored(media_root)


def test_a_content_length_over_the_limit_is_413_before_reading(acme, media_root: Path, settings) -> None:
    settings.MAX_FILE_SIZE = 100_000
    response = upload(acme.user("alice"), tone_wav(20))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    _nothing_stored(media_root)


def test_an_idempotency_key_replay_returns_the_same_call_and_keeps_one_file(acme, media_root: Path) -> None:
    alice = acme.user("alice")
    content = tone_wav()
    first = upload(alice, content, key="upload-1")
    again = upload(alice, content, key="upload-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["callId"] == first.json()["callId"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert UploadedCall.objects.count() == 1
    assert len(stored_files(media_root)) == 1


def test_an_idempotency_key_reused_with_another_file_is_422(acme, media_root: Path) -> None:
    alice = acme.user("alice")
    upload(alice, tone_wav(), key="upload-1")
    response = upload(alice, tone_wav(frequency=880), key="upload-1")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert UploadedCall.objects.count() == 1
    assert len(stored_files(media_root)) == 1


def test_the_same_idempotency_key_of_another_user_is_their_own_upload(acme, media_root: Path) -> None:
    first = upload(acme.user("alice"), tone_wav(), key="k")
    second = upload(acme.user("bob"), tone_wav(), key="k")
    assert first.json()["callId"] != second.json()["callId"]


def test_storage_unavailable_at_upload_is_503_and_nothing_is_half_stored(acme, settings, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the storage folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocked)}},
    }
    response = upload(acme.user("alice"), tone_wav())
    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert not MediaEntry.objects.exists() and not UploadedCall.objects.exists()
    assert blocked.read_text() == "a file where the storage folder should be"


def test_upload_is_503_when_no_speech_model_is_available(acme, media_root: Path, settings) -> None:
    settings.TRANSCRIPTION_POST_ENABLED = False
    response = upload(acme.user("alice"), tone_wav())
    assert response.status_code == 503
    assert response.json()["code"] == "transcription_unavailable"
    _nothing_stored(media_root)


def _file_part(name: str, content: bytes, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_metadata_sent_as_an_application_json_file_part_is_read_like_a_text_part(acme, media_root: Path) -> None:
    # What a browser's FormData sends for a Blob of type application/json.
    metadata = _file_part(
        "blob", json.dumps({"title": "From a Blob", "durationSeconds": 240}).encode(), "application/json"
    )
    response = acme.user("alice").post(
        "/api/calls/analyze",
        {"file": _file_part("call.wav", tone_wav(), "audio/wav"), "metadata": metadata},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    call = UploadedCall.objects.get(pk=response.json()["callId"])
    assert (call.title, call.duration_seconds) == ("From a Blob", 240)


def test_a_title_sent_as_a_file_part_is_its_text(acme, media_root: Path) -> None:
    response = acme.user("alice").post(
        "/api/calls/analyze",
        {
            "file": _file_part("call.wav", tone_wav(), "audio/wav"),
            "title": _file_part("t", b"Weekly sync", "text/plain"),
        },
        format="multipart",
    )
    assert response.status_code == 202, response.content
    assert UploadedCall.objects.get(pk=response.json()["callId"]).title == "Weekly sync"


def test_a_metadata_file_part_that_is_not_utf8_is_400(acme, media_root: Path) -> None:
    response = acme.user("alice").post(
        "/api/calls/analyze",
        {
            "file": _file_part("call.wav", tone_wav(), "audio/wav"),
            "metadata": _file_part("m", b"\xff\xfe{", "application/json"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "metadata" in response.json()["errors"]
    _nothing_stored(media_root)


def test_two_file_parts_are_400_and_nothing_is_kept(acme, media_root: Path) -> None:
    response = acme.user("alice").post(
        "/api/calls/analyze",
        {
            "file": [
                _file_part("a.wav", tone_wav(), "audio/wav"),
                _file_part("b.wav", tone_wav(frequency=880), "audio/wav"),
            ]
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_failed"
    assert "file" in response.json()["errors"]
    _nothing_stored(media_root)


def test_an_idempotency_key_reused_with_the_same_file_and_other_metadata_is_422(acme, media_root: Path) -> None:
    alice = acme.user("alice")
    content = tone_wav()
    first = upload(alice, content, metadata={"title": "First"}, key="upload-1")
    assert first.status_code == 202
    response = upload(alice, content, metadata={"title": "Second"}, key="upload-1")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert UploadedCall.objects.get().title == "First"
    assert len(stored_files(media_root)) == 1


def test_an_idempotency_key_replay_with_the_same_file_and_metadata_still_replays(acme, media_root: Path) -> None:
    alice = acme.user("alice")
    content = tone_wav()
    metadata = {"title": "Same", "durationSeconds": 240, "recordedAt": "2026-05-29T13:00:00Z"}
    first = upload(alice, content, metadata=metadata, key="upload-1")
    again = upload(alice, content, metadata=metadata, key="upload-1")
    assert again.status_code == 202 and again.json()["callId"] == first.json()["callId"]


@pytest.mark.parametrize("duration", [1e308, 10**12, "Infinity", "NaN", -1])
def test_an_absurd_duration_is_400_naming_it(acme, media_root: Path, duration) -> None:
    raw = (
        json.dumps({"durationSeconds": duration})
        if not isinstance(duration, str)
        else f'{{"durationSeconds": {duration}}}'
    )
    response = upload(acme.user("alice"), tone_wav(), metadata=raw)
    assert response.status_code == 400, response.content
    # NaN and Infinity are not JSON (RFC 8259): the metadata part itself is refused before its fields are read.
    named = "metadata" if isinstance(duration, str) else "metadata.durationSeconds"
    assert named in response.json()["errors"]
    _nothing_stored(media_root)


def test_duration_seconds_is_an_integer_as_the_document_shows(acme, media_root: Path) -> None:
    alice = acme.user("alice")
    call_id = upload(alice, tone_wav(), metadata={"durationSeconds": 240}).json()["callId"]
    detail = alice.get(f"/api/calls/{call_id}")
    assert detail.content.count(b'"durationSeconds":240,') == 1, detail.content
    listed = alice.get("/api/calls")
    assert b'"durationSeconds":240,' in listed.content, listed.content
    measured = upload(alice, tone_wav(2.6)).json()["callId"]
    assert alice.get(f"/api/calls/{measured}").json()["durationSeconds"] == 3
