"""The uploaded-call pipeline: QUEUED -> TRANSCRIBING -> COMPLETED | FAILED with the real tiny.en recognizer,
crash recovery by the stuck-call sweep, and retention."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from scaiwave.models import Event
from transcription.analysis.services import uploaded_calls_enforce_retention, uploaded_calls_recover_stuck
from transcription.analysis.tasks import uploaded_call_process_task
from transcription.models import ActionItem, Transcription, UploadedCall
from transcription.tests.analysis_support import stored_files, tone_wav, upload
from transcription.tests.conftest import run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stt_engine")]


def _say(path: Path, text: str, *, voice: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    run("espeak-ng", "-v", voice, "-s", "130", "-w", str(path), text)
    return path


def _stereo_call(folder: Path) -> bytes:
    """A phone-style recording: the uploader on the left channel, the contact (another voice) on the right."""
    contact = _say(folder / "contact.wav", "Hello, this is Ravi from Acme.", voice="en+m1")
    user = _say(folder / "user.wav", "Thanks Ravi. I will send you the revised quote by Friday.", voice="en-us")
    out = folder / "call.m4a"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-i", str(user), "-i", str(contact), "-filter_complex",
        "[0:a]adelay=3500,apad=whole_dur=9[l];[1:a]apad=whole_dur=9[r];[l][r]join=inputs=2:channel_layout=stereo[a]",
        "-map", "[a]", "-c:a", "aac", "-b:a", "64k", str(out),
    )  # fmt: skip
    return out.read_bytes()


def _upload_and_capture(client, content: bytes, capture, **metadata) -> str:
    with capture(execute=False) as callbacks:
        response = upload(client, content, name="call.m4a", metadata=metadata or None)
    assert response.status_code == 202, response.json()
    assert len(callbacks) == 1  # the processing task is queued once, after commit
    return str(response.json()["callId"])


def test_a_stereo_phone_call_is_transcribed_named_from_metadata_and_analysed(
    acme, media_root: Path, speech_dir: Path, django_capture_on_commit_callbacks
) -> None:
    alice = acme.user("alice", name="Alice")
    call_id = _upload_and_capture(
        alice,
        _stereo_call(speech_dir),
        django_capture_on_commit_callbacks,
        direction="OUTGOING",
        contactName="Ravi",
        organization="Acme",
        recordedAt="2026-05-27T10:00:00Z",  # a Wednesday: "by Friday" is 2026-05-29
    )
    assert alice.get(f"/api/calls/status?ids={call_id}").json()["items"][0]["status"] == "QUEUED"

    uploaded_call_process_task.apply(args=[call_id])  # the worker, in-process

    status = alice.get(f"/api/calls/status?ids={call_id}").json()["items"][0]
    assert status == {"callId": call_id, "status": "COMPLETED", "progress": 100}
    transcript = alice.get(f"/api/calls/{call_id}/transcript").json()
    assert transcript["speakerSeparation"] == "stereo_channels"
    said = {s["speaker"]: s["text"].lower() for s in transcript["segments"]}
    assert set(said) == {"Ravi", "Alice"}
    assert "this is ravi" in said["Ravi"] and "revised quote" in said["Alice"]
    assert transcript["segments"][0]["speaker"] == "Ravi"  # the contact spoke first
    analysis = alice.get(f"/api/calls/{call_id}/analysis").json()
    (item,) = [i for i in analysis["actionItems"] if "quote" in i["text"].lower()]
    assert item["owner"] == "Alice" and item["dueDate"] == "2026-05-29"
    event = Event.objects.get(type="analysis_completed")
    assert event.data["callId"] == call_id and event.user_ids == [acme.user_row("alice").pk]


def test_a_worker_killed_mid_transcription_is_requeued_by_the_sweep_and_then_completes(
    acme, media_root: Path, settings, django_capture_on_commit_callbacks
) -> None:
    call_id = _upload_and_capture(acme.user("alice"), tone_wav(), django_capture_on_commit_callbacks)
    call = UploadedCall.objects.get(pk=call_id)
    # What a worker killed half-way leaves behind: the call TRANSCRIBING, its job processing, nobody on it.
    long_ago = timezone.now() - timedelta(seconds=settings.ANALYSIS_STUCK_AFTER + 60)
    UploadedCall.objects.filter(pk=call_id).update(status="TRANSCRIBING", transcribing_since=long_ago, attempts=1)
    Transcription.objects.filter(pk=call.transcription_id).update(status="processing", progress=30)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert uploaded_calls_recover_stuck() == {"requeued": 1, "failed": 0}
    assert len(callbacks) == 1
    assert UploadedCall.objects.get(pk=call_id).status == UploadedCall.Status.QUEUED

    uploaded_call_process_task.apply(args=[call_id])  # the restarted worker
    call.refresh_from_db()
    assert call.status == UploadedCall.Status.COMPLETED and call.attempts == 2
    assert call.transcription is not None and call.transcription.status == Transcription.Status.COMPLETED


def test_a_call_stuck_after_its_last_attempt_fails_with_a_reason(acme, media_root: Path, settings) -> None:
    response = upload(acme.user("alice"), tone_wav())
    call_id = response.json()["callId"]
    long_ago = timezone.now() - timedelta(seconds=settings.ANALYSIS_STUCK_AFTER + 60)
    UploadedCall.objects.filter(pk=call_id).update(
        status="TRANSCRIBING", transcribing_since=long_ago, attempts=settings.ANALYSIS_MAX_ATTEMPTS
    )
    assert uploaded_calls_recover_stuck()["failed"] == 1
    call = UploadedCall.objects.get(pk=call_id)
    assert call.status == UploadedCall.Status.FAILED
    assert "stopped responding" in call.error_reason
    body = acme.user("alice").get(f"/api/calls/{call_id}").json()
    assert body["status"] == "FAILED" and body["errorReason"] == call.error_reason


def test_a_recent_transcribing_call_is_left_alone_by_the_sweep(acme, media_root: Path) -> None:
    call_id = upload(acme.user("alice"), tone_wav()).json()["callId"]
    UploadedCall.objects.filter(pk=call_id).update(status="TRANSCRIBING", transcribing_since=timezone.now())
    assert uploaded_calls_recover_stuck() == {"requeued": 0, "failed": 0}
    assert UploadedCall.objects.get(pk=call_id).status == UploadedCall.Status.TRANSCRIBING


def test_a_file_that_stops_decoding_fails_the_call_with_a_reason(acme, media_root: Path) -> None:
    call_id = upload(acme.user("alice"), tone_wav()).json()["callId"]
    call = UploadedCall.objects.select_related("media_entry").get(pk=call_id)
    assert call.media_entry is not None
    Path(default_storage.path(call.media_entry.key)).write_bytes(b"corrupted on disk")

    uploaded_call_process_task.apply(args=[call_id])

    call.refresh_from_db()
    assert call.status == UploadedCall.Status.FAILED
    assert call.error_reason.startswith("Transcription failed:")
    assert Event.objects.filter(type="analysis_failed", data__callId=call_id).exists()
    response = acme.user("alice").get(f"/api/calls/{call_id}/analysis")
    assert response.status_code == 422


def test_running_the_task_again_leaves_a_finished_call_alone(acme, media_root: Path) -> None:
    call_id = upload(acme.user("alice"), tone_wav()).json()["callId"]
    uploaded_call_process_task.apply(args=[call_id])
    finished = UploadedCall.objects.get(pk=call_id)
    assert finished.status == UploadedCall.Status.COMPLETED
    uploaded_call_process_task.apply(args=[call_id])
    again = UploadedCall.objects.get(pk=call_id)
    assert (again.status, again.attempts, again.completed_at) == (
        finished.status,
        finished.attempts,
        finished.completed_at,
    )


def test_retention_deletes_calls_older_than_the_tenants_days_with_their_objects(acme, media_root: Path) -> None:
    acme.tenant.retention_days = 30
    acme.tenant.save(update_fields=["retention_days"])
    alice = acme.user("alice")
    old = upload(alice, tone_wav()).json()["callId"]
    recent = upload(alice, tone_wav(frequency=660)).json()["callId"]
    UploadedCall.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=31))
    ActionItem.objects.create(call_id=old, user=acme.user_row("alice"), text="Send the quote")
    assert len(stored_files(media_root)) == 2

    assert uploaded_calls_enforce_retention() == {"deleted": 1, "failed": 0}

    assert list(UploadedCall.objects.values_list("pk", flat=True)) == [UploadedCall.objects.get(pk=recent).pk]
    assert not ActionItem.objects.exists()
    assert len(stored_files(media_root)) == 1


def test_retention_zero_keeps_everything(acme, media_root: Path) -> None:
    call_id = upload(acme.user("alice"), tone_wav()).json()["callId"]
    UploadedCall.objects.filter(pk=call_id).update(created_at=timezone.now() - timedelta(days=3650))
    assert uploaded_calls_enforce_retention() == {"deleted": 0, "failed": 0}


def test_a_transient_transcription_error_puts_the_call_back_in_the_queue_for_a_retry(
    acme, media_root: Path, monkeypatch
) -> None:
    from transcription import services as transcription_services
    from transcription.analysis.services import uploaded_call_process
    from transcription.services import TranscriptionRetry

    call_id = upload(acme.user("alice"), tone_wav()).json()["callId"]

    def flaky(transcription: Transcription) -> None:
        raise ConnectionError("object storage hiccup")

    monkeypatch.setattr(transcription_services, "_transcribe", flaky)
    with pytest.raises(TranscriptionRetry):
        uploaded_call_process(call_id=call_id)
    call = UploadedCall.objects.get(pk=call_id)
    assert (call.status, call.attempts) == (UploadedCall.Status.QUEUED, 1)

    monkeypatch.undo()
    uploaded_call_process(call_id=call_id)
    assert UploadedCall.objects.get(pk=call_id).status == UploadedCall.Status.COMPLETED
