"""POST /v1/recordings/{id}/transcribe, GET/DELETE /v1/transcriptions (document 001, X-API-Key)."""

from __future__ import annotations

import re

import pytest
from django.conf import LazySettings

from scaiwave.testing import audit_traced
from transcription.models import Transcription, TranscriptSegment
from transcription.tasks import transcription_run_task
from transcription.tests.conftest import librivox_clip
from transcription.tests.factories import composite_add, recording_make, room_make

pytestmark = pytest.mark.usefixtures("media_root")


@pytest.fixture
def ready_recording(acme):
    recording = recording_make(room_make(acme.tenant))
    composite_add(recording, librivox_clip("0880")[0])
    return recording


def _completed(recording, *, texts=("He was not an ill-disposed young man.",)) -> Transcription:
    job = Transcription.objects.create(
        tenant=recording.tenant, recording=recording, status="completed", progress=100, duration=3.0
    )
    for index, text in enumerate(texts):
        TranscriptSegment.objects.create(
            transcription=job,
            index=index,
            start=index * 2.5,
            end=index * 2.5 + 2.0,
            text=text,
            speaker_label="alice",
            speaker_name="Alice",
            words=[{"start": 0.0, "end": 0.3, "text": "He", "probability": 0.9}],
            confidence=0.8,
        )
    return job


def test_server_queues_a_transcription_and_gets_202(acme, ready_recording, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = acme.server().post(
            f"/v1/recordings/{ready_recording.pk}/transcribe",
            {"language": "en-GB", "participants": {"Speaker 1": "Alice"}},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"transcriptionId", "recordingId", "status", "queuedAt"}
    assert body["transcriptionId"].startswith("tr_") and body["recordingId"] == ready_recording.pk
    assert body["status"] == "queued" and body["queuedAt"].endswith("Z")
    assert len(callbacks) == 1  # the job is queued after commit
    job = Transcription.objects.get(pk=body["transcriptionId"])
    assert job.language == "en-GB" and job.speaker_map == {"Speaker 1": "Alice"}


def test_a_queued_job_runs_and_reads_back_with_segments(acme, ready_recording, stt_engine) -> None:
    body = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json").json()
    transcription_run_task(body["transcriptionId"])

    detail = acme.server().get(f"/v1/transcriptions/{body['transcriptionId']}").json()
    assert detail["status"] == "completed" and detail["progress"] == 100
    assert detail["language"] == "en-US" and detail["detectedLanguage"] == "en"
    assert detail["duration"] == pytest.approx(2.99, abs=0.05)
    assert detail["segmentCount"] == len(detail["segments"]) >= 1
    segment = detail["segments"][0]
    assert segment["speaker"] == "Speaker 1" and segment["words"]


def test_the_default_language_is_en_us(acme, ready_recording) -> None:
    body = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json").json()
    assert Transcription.objects.get(pk=body["transcriptionId"]).language == "en-US"


def test_another_tenants_recording_is_not_found(globex, ready_recording) -> None:
    response = globex.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "recording_not_found"


def test_a_recording_still_running_cannot_be_transcribed(acme) -> None:
    recording = recording_make(room_make(acme.tenant), status="recording")
    response = acme.server().post(f"/v1/recordings/{recording.pk}/transcribe", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "recording_not_ready"


def test_an_unknown_language_is_a_400(acme, ready_recording) -> None:
    response = acme.server().post(
        f"/v1/recordings/{ready_recording.pk}/transcribe", {"language": "xx-YY"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_language"


def test_a_non_english_language_with_an_english_only_model_is_a_400(acme, ready_recording) -> None:
    response = acme.server().post(
        f"/v1/recordings/{ready_recording.pk}/transcribe", {"language": "fr-FR"}, format="json"
    )
    assert response.status_code == 400
    assert "English" in response.json()["detail"]


def test_a_bad_speaker_map_is_a_400(acme, ready_recording) -> None:
    response = acme.server().post(
        f"/v1/recordings/{ready_recording.pk}/transcribe", {"participants": ["Alice"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


def test_transcribe_is_503_when_post_call_transcription_is_disabled(
    acme, ready_recording, settings: LazySettings
) -> None:
    settings.TRANSCRIPTION_POST_ENABLED = False
    response = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "transcription_unavailable"


def test_transcribe_is_503_when_no_model_is_installed(acme, ready_recording, settings: LazySettings) -> None:
    settings.STT_MODEL = "/opt/no-such-model"
    response = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json")
    assert response.status_code == 503


def test_a_tenant_with_transcription_disabled_is_refused(acme, ready_recording) -> None:
    acme.tenant.transcription_enabled = False
    acme.tenant.save()
    response = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "transcription_disabled"


def test_the_same_idempotency_key_replays_the_first_job(acme, ready_recording) -> None:
    client = acme.server()
    url = f"/v1/recordings/{ready_recording.pk}/transcribe"
    first = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()
    second = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()
    assert first["transcriptionId"] == second["transcriptionId"]
    assert Transcription.objects.count() == 1


def test_without_an_api_key_it_is_401_and_a_user_token_is_403(acme, ready_recording) -> None:
    from rest_framework.test import APIClient

    url = f"/v1/recordings/{ready_recording.pk}/transcribe"
    assert APIClient().post(url, {}, format="json").status_code == 401
    assert acme.user("alice").post(url, {}, format="json").status_code == 403
    assert acme.user("alice").get("/v1/transcriptions").status_code == 403


def test_the_list_is_paged_newest_first_and_scoped_to_the_tenant(acme, globex, ready_recording) -> None:
    jobs = [_completed(ready_recording) for _ in range(3)]
    _completed(recording_make(room_make(globex.tenant)))

    first = acme.server().get("/v1/transcriptions?limit=2").json()
    assert [t["transcriptionId"] for t in first["transcriptions"]] == [jobs[2].pk, jobs[1].pk]
    assert first["transcriptions"][0]["segmentCount"] == 1
    second = acme.server().get(f"/v1/transcriptions?limit=2&cursor={first['nextCursor']}").json()
    assert [t["transcriptionId"] for t in second["transcriptions"]] == [jobs[0].pk]
    assert second["nextCursor"] is None


def test_the_list_holds_post_call_transcriptions_only(acme, ready_recording) -> None:
    from recordings.models import MediaEntry

    post_call = _completed(ready_recording)
    Transcription.objects.create(tenant=acme.tenant, mode=Transcription.Mode.LIVE, status="active")
    upload = MediaEntry.objects.create(
        tenant=acme.tenant, key="recordings/uploads/x.wav", content_type="audio/wav", size=1, sha256="0" * 64,
        source="upload",
    )  # fmt: skip
    Transcription.objects.create(tenant=acme.tenant, media_entry=upload)

    body = acme.server().get("/v1/transcriptions").json()

    assert [t["transcriptionId"] for t in body["transcriptions"]] == [post_call.pk]


def test_the_list_filters_by_status(acme, ready_recording) -> None:
    done = _completed(ready_recording)
    Transcription.objects.create(tenant=acme.tenant, recording=ready_recording)
    body = acme.server().get("/v1/transcriptions?status=completed").json()
    assert [t["transcriptionId"] for t in body["transcriptions"]] == [done.pk]
    assert acme.server().get("/v1/transcriptions?status=nope").status_code == 400


def test_another_tenants_transcription_is_404(globex, ready_recording) -> None:
    job = _completed(ready_recording)
    response = globex.server().get(f"/v1/transcriptions/{job.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "transcription_not_found"
    assert globex.server().delete(f"/v1/transcriptions/{job.pk}").status_code == 404


def test_text_export(acme, ready_recording) -> None:
    job = _completed(ready_recording, texts=("Hello there.", "General Kenobi."))
    response = acme.server().get(f"/v1/transcriptions/{job.pk}?format=text")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "[00:00:00] Alice: Hello there.\n[00:00:02] Alice: General Kenobi.\n"


def test_vtt_export(acme, ready_recording) -> None:
    job = _completed(ready_recording, texts=("Hello <there> & you.",))
    response = acme.server().get(f"/v1/transcriptions/{job.pk}?format=vtt", HTTP_ACCEPT="text/vtt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/vtt")
    assert response.content.decode() == (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\n<v Alice>Hello &lt;there&gt; &amp; you.\n"
    )


def test_srt_export(acme, ready_recording) -> None:
    job = _completed(ready_recording, texts=("One.", "Two."))
    response = acme.server().get(f"/v1/transcriptions/{job.pk}?format=srt")
    assert response.status_code == 200
    assert response.content.decode() == (
        "1\n00:00:00,000 --> 00:00:02,000\nAlice: One.\n\n2\n00:00:02,500 --> 00:00:04,500\nAlice: Two.\n"
    )


def test_an_unknown_export_format_is_a_400(acme, ready_recording) -> None:
    job = _completed(ready_recording)
    response = acme.server().get(f"/v1/transcriptions/{job.pk}?format=docx")
    assert response.status_code == 400


def test_delete_removes_the_transcription_and_its_segments(acme, ready_recording) -> None:
    job = _completed(ready_recording)
    response = acme.server().delete(f"/v1/transcriptions/{job.pk}")
    assert response.status_code == 204
    assert not Transcription.objects.filter(pk=job.pk).exists()
    assert not TranscriptSegment.objects.filter(transcription_id=job.pk).exists()
    assert acme.server().get(f"/v1/transcriptions/{job.pk}").status_code == 404


def test_a_job_deleted_while_it_runs_stores_nothing(acme, ready_recording, stt_engine) -> None:
    from transcription import services

    job = Transcription.objects.create(tenant=acme.tenant, recording=ready_recording)
    claimed = services._claim(job.pk)
    assert claimed is not None
    segments, duration, language = services._transcribe(claimed)
    acme.server().delete(f"/v1/transcriptions/{job.pk}")
    services._finish(job.pk, segments, duration, language)
    assert not TranscriptSegment.objects.exists()


def test_times_are_utc_with_milliseconds_as_document_001_writes_them(acme, ready_recording) -> None:
    ms_utc = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
    queued = acme.server().post(f"/v1/recordings/{ready_recording.pk}/transcribe", {}, format="json").json()
    job = _completed(ready_recording)
    Transcription.objects.filter(pk=job.pk).update(completed_at=job.created_at)

    detail = acme.server().get(f"/v1/transcriptions/{job.pk}").json()

    assert re.fullmatch(ms_utc, queued["queuedAt"]), queued
    assert re.fullmatch(ms_utc, detail["queuedAt"]) and re.fullmatch(ms_utc, detail["completedAt"]), detail


def test_a_delete_is_recorded_with_who_did_it(acme, ready_recording, caplog) -> None:
    caplog.set_level("INFO", logger="scaiwave.audit")
    job = _completed(ready_recording)

    assert acme.server().delete(f"/v1/transcriptions/{job.pk}").status_code == 204

    assert audit_traced(caplog, "transcription_deleted", "server")["id"] == job.pk
