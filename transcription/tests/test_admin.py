"""The operators' pages for transcriptions: list, detail with segments, re-run, delete through the service."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote

from transcription.models import Transcription, TranscriptSegment
from transcription.tests.factories import recording_make, room_make


@pytest.fixture
def finished(acme) -> Transcription:
    job = Transcription.objects.create(
        tenant=acme.tenant, recording=recording_make(room_make(acme.tenant)), status="failed", error="no audio"
    )
    TranscriptSegment.objects.create(transcription=job, index=0, start=0, end=1, text="hello there", speaker_name="Al")
    return job


def test_the_list_and_the_detail_page_render(admin_client, finished: Transcription) -> None:
    listing = admin_client.get("/admin/transcription/transcription/")
    assert listing.status_code == 200 and finished.pk in listing.content.decode()
    detail = admin_client.get(f"/admin/transcription/transcription/{quote(finished.pk)}/change/")
    assert detail.status_code == 200 and "hello there" in detail.content.decode()


def test_rerunning_a_failed_job_queues_it_again(
    admin_client, finished: Transcription, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            "/admin/transcription/transcription/",
            {"action": "requeue_selected", "_selected_action": [finished.pk], "post": "yes"},
        )
    assert response.status_code == 302
    finished.refresh_from_db()
    assert finished.status == "queued" and finished.error == "" and finished.attempts == 0
    assert len(callbacks) == 1


def test_a_job_being_processed_is_not_queued_twice(admin_client, finished: Transcription) -> None:
    Transcription.objects.filter(pk=finished.pk).update(status="processing")
    admin_client.post(
        "/admin/transcription/transcription/",
        {"action": "requeue_selected", "_selected_action": [finished.pk], "post": "yes"},
    )
    assert Transcription.objects.get(pk=finished.pk).status == "processing"


def test_deleting_in_the_admin_removes_the_segments(admin_client, finished: Transcription) -> None:
    response = admin_client.post(f"/admin/transcription/transcription/{quote(finished.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TranscriptSegment.objects.exists()


def _uploaded_calls(acme, count: int) -> list:
    from transcription.models import ActionItem, UploadedCall

    owner = acme.user_row("uploader")
    calls = []
    for n in range(count):
        call = UploadedCall.objects.create(
            tenant=acme.tenant, owner=owner, title=f"Review {n}", status="COMPLETED", analysis={"summary": f"Sum {n}"}
        )
        ActionItem.objects.create(call=call, user=owner, text=f"Send the quote {n}", owner_name="Ravi")
        calls.append(call)
    return calls


def test_uploaded_calls_and_their_analysis_are_visible(admin_client, acme, django_assert_max_num_queries) -> None:
    from django.contrib.admin.utils import quote

    calls = _uploaded_calls(acme, 3)
    with django_assert_max_num_queries(16):
        listing = admin_client.get("/admin/transcription/uploadedcall/")
    assert listing.status_code == 200 and "Review 2" in listing.content.decode()
    detail = admin_client.get(f"/admin/transcription/uploadedcall/{quote(str(calls[0].pk))}/change/").content.decode()
    assert "Sum 0" in detail and "Send the quote 0" in detail


def test_the_uploaded_call_list_costs_the_same_queries_for_more_rows(admin_client, acme) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _uploaded_calls(acme, 3)
    with CaptureQueriesContext(connection) as few:
        admin_client.get("/admin/transcription/uploadedcall/")
    _uploaded_calls(acme, 20)
    with CaptureQueriesContext(connection) as many:
        admin_client.get("/admin/transcription/uploadedcall/")
    assert len(many) == len(few)
