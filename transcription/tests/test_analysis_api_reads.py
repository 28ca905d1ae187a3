"""Reads, deletes, speakers and action items of /api/calls: each scoped to the caller's own calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from recordings.models import MediaEntry
from scaiwave.testing import audit_traced
from transcription.models import ActionItem, Transcription, TranscriptSegment, UploadedCall
from transcription.tests.analysis_support import complete_without_model, stored_files, tone_wav, upload

pytestmark = pytest.mark.django_db

RAVI_CALL = [
    ("Speaker 2", 0.5, 2.0, "Hello, this is Ravi from Acme."),
    ("Speaker 1", 2.5, 5.0, "Thanks Ravi. I will send you the revised quote by Friday."),
]


def _uploaded(client: Any, **metadata: Any) -> str:
    response = upload(client, tone_wav(channels=2), metadata=metadata or None)
    assert response.status_code == 202, response.json()
    return str(response.json()["callId"])


@pytest.fixture
def alice(acme):
    return acme.user("alice", name="Alice")


@pytest.fixture
def completed(alice, media_root: Path) -> str:
    call_id = _uploaded(alice, contactName="Ravi", direction="OUTGOING", recordedAt="2026-05-27T10:00:00Z")
    complete_without_model(call_id, RAVI_CALL)
    return call_id


# --- GET /api/calls/{id} ----------------------------------------------------------------------------


def test_call_detail_has_the_documents_fields(alice, media_root: Path) -> None:
    call_id = _uploaded(alice, contactName="Ravi", phoneNumber="+1 555", recordedAt="2026-05-29T13:00:00Z")
    body = alice.get(f"/api/calls/{call_id}").json()
    for field in (
        "callId", "title", "status", "direction", "contactName", "phoneNumber",
        "durationSeconds", "recordedAt", "createdAt", "errorReason",
    ):  # fmt: skip
        assert field in body
    assert body["status"] == "QUEUED" and body["recordedAt"] == "2026-05-29T13:00:00Z"
    assert body["errorReason"] is None and body["progress"] == 0


@pytest.mark.parametrize("call_id", ["not-a-uuid", "f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6"])
def test_an_unknown_call_is_404_call_not_found(alice, call_id: str) -> None:
    response = alice.get(f"/api/calls/{call_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "call_not_found"


# --- Another user's call is invisible everywhere -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/calls/{id}", None),
        ("delete", "/api/calls/{id}", None),
        ("get", "/api/calls/{id}/transcript", None),
        ("get", "/api/calls/{id}/analysis", None),
        ("patch", "/api/calls/{id}/speakers", {"speakers": {"S1": "Mallory"}}),
    ],
)
@pytest.mark.parametrize("outsider", ["same_tenant", "other_tenant"])
def test_another_users_call_is_404_everywhere(
    acme, globex, completed: str, method: str, path: str, body: Any, outsider: str
) -> None:
    client = acme.user("bob") if outsider == "same_tenant" else globex.user("alice")
    response = getattr(client, method)(path.format(id=completed), body, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "call_not_found"
    assert UploadedCall.objects.filter(pk=completed).exists()


def test_another_users_calls_are_absent_from_lists_status_bulk_delete_and_action_items(acme, completed: str) -> None:
    bob = acme.user("bob")
    assert bob.get("/api/calls").json()["items"] == []
    assert bob.get(f"/api/calls/status?ids={completed}").json() == {"items": [], "missing": [completed]}
    assert bob.get("/api/action-items").json()["items"] == []
    item = ActionItem.objects.get()
    assert bob.patch(f"/api/action-items/{item.pk}", {"done": True}, format="json").status_code == 404
    assert bob.delete("/api/calls", {"callIds": [completed]}, format="json").json() == {
        "deleted": 0,
        "missing": 1,
        "failed": [],
    }
    assert UploadedCall.objects.filter(pk=completed).exists()


# --- GET /api/calls ---------------------------------------------------------------------------------


def test_the_list_is_newest_first_with_the_documents_fields(alice, media_root: Path) -> None:
    first = _uploaded(alice, title="first")
    second = _uploaded(alice, title="second")
    body = alice.get("/api/calls").json()
    assert [c["callId"] for c in body["items"]] == [second, first]
    assert body["nextCursor"] is None
    assert set(body["items"][0]) >= {"callId", "title", "contactName", "direction", "status", "durationSeconds"}


def test_the_list_filters_by_status(alice, completed: str) -> None:
    queued = _uploaded(alice)
    assert [c["callId"] for c in alice.get("/api/calls?status=COMPLETED").json()["items"]] == [completed]
    assert [c["callId"] for c in alice.get("/api/calls?status=QUEUED").json()["items"]] == [queued]
    response = alice.get("/api/calls?status=DONE")
    assert response.status_code == 400 and "status" in response.json()["errors"]


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_a_limit_outside_1_to_100_is_400(alice, limit: str) -> None:
    response = alice.get(f"/api/calls?limit={limit}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


def test_a_garbage_cursor_is_400(alice) -> None:
    assert alice.get("/api/calls?cursor=%%%").status_code == 400


def test_cursors_neither_skip_nor_repeat_while_new_calls_arrive(alice, media_root: Path) -> None:
    existing = [_uploaded(alice) for _ in range(5)]
    seen: list[str] = []
    page = alice.get("/api/calls?limit=2").json()
    seen += [c["callId"] for c in page["items"]]
    while page["nextCursor"]:
        _uploaded(alice)  # a new call arrives between pages
        page = alice.get(f"/api/calls?limit=2&cursor={page['nextCursor']}").json()
        seen += [c["callId"] for c in page["items"]]
    assert seen == list(reversed(existing))


# --- GET /api/calls/status --------------------------------------------------------------------------


def test_bulk_status_answers_in_the_order_asked_with_progress(alice, completed: str, media_root: Path) -> None:
    queued = _uploaded(alice)
    call = UploadedCall.objects.get(pk=queued)
    UploadedCall.objects.filter(pk=queued).update(status=UploadedCall.Status.TRANSCRIBING)
    Transcription.objects.filter(pk=call.transcription_id).update(status="processing", progress=40)
    body = alice.get(f"/api/calls/status?ids={queued},{completed},nope").json()
    assert body["items"] == [
        {"callId": queued, "status": "TRANSCRIBING", "progress": 38},
        {"callId": completed, "status": "COMPLETED", "progress": 100},
    ]
    assert body["missing"] == ["nope"]


def test_bulk_status_is_one_query_for_100_ids(alice, completed: str, django_assert_max_num_queries) -> None:
    ids = ",".join([completed] + [f"00000000-0000-4000-8000-{n:012d}" for n in range(99)])
    alice.get("/api/calls")  # the user row exists; what follows is auth + the one status query
    with django_assert_max_num_queries(3):
        response = alice.get(f"/api/calls/status?ids={ids}")
    assert response.status_code == 200 and len(response.json()["missing"]) == 99


def test_bulk_status_rejects_more_than_100_ids_and_none(alice) -> None:
    ids = ",".join(f"00000000-0000-4000-8000-{n:012d}" for n in range(101))
    assert alice.get(f"/api/calls/status?ids={ids}").status_code == 400
    assert alice.get("/api/calls/status").status_code == 400


# --- Transcript and analysis ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["transcript", "analysis"])
def test_transcript_and_analysis_before_completion_are_422_call_not_completed(alice, media_root, path) -> None:
    call_id = _uploaded(alice)
    response = alice.get(f"/api/calls/{call_id}/{path}")
    assert response.status_code == 422
    assert response.json()["code"] == "call_not_completed"


def test_the_transcript_names_both_parties_per_channel(alice, completed: str) -> None:
    body = alice.get(f"/api/calls/{completed}/transcript").json()
    assert body["speakerSeparation"] == "stereo_channels"
    assert [(s["speaker"], s["text"][:5]) for s in body["segments"]] == [("Ravi", "Hello"), ("Alice", "Thank")]
    roles = {s["name"]: (s["role"], s["channel"]) for s in body["speakers"]}
    assert roles == {"Alice": ("user", "left"), "Ravi": ("contact", "right")}
    assert all(s["confidence"] > 0.9 for s in body["speakers"])


@pytest.mark.parametrize(
    ("fmt", "content_type", "expected"),
    [
        ("text", "text/plain", "[00:00:00] Ravi: Hello, this is Ravi from Acme."),
        ("vtt", "text/vtt", "<v Alice>Thanks Ravi."),
        ("srt", "application/x-subrip", "00:00:02,500 --> 00:00:05,000"),
    ],
)
def test_the_transcript_exports(alice, completed: str, fmt: str, content_type: str, expected: str) -> None:
    response = alice.get(f"/api/calls/{completed}/transcript?format={fmt}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert expected in response.content.decode()


def test_an_unknown_transcript_format_is_400(alice, completed: str) -> None:
    assert alice.get(f"/api/calls/{completed}/transcript?format=docx").status_code == 400


def test_a_mono_recording_is_one_speaker_and_says_so(alice, media_root: Path) -> None:
    call_id = _uploaded(alice, contactName="Ravi")
    complete_without_model(call_id, [("Speaker 1", 0.0, 2.0, "Hello there. I will call you tomorrow.")])
    body = alice.get(f"/api/calls/{call_id}/transcript").json()
    assert body["speakerSeparation"] == "single_speaker"
    assert body["diarization"]["available"] is False and "no diarization backend" in body["diarization"]["note"]
    assert len(body["speakers"]) == 1


def test_the_analysis_lists_summary_action_items_topics_talk_time_and_questions(alice, completed: str) -> None:
    body = alice.get(f"/api/calls/{completed}/analysis").json()
    assert body["summary"]
    (item,) = body["actionItems"]
    assert item["owner"] == "Alice" and item["dueDate"] == "2026-05-29" and item["done"] is False
    assert "revised quote" in item["text"]
    assert "quote" in body["keyTopics"]
    assert {t["name"] for t in body["talkTime"]} == {"Alice", "Ravi"}
    assert sum(t["share"] for t in body["talkTime"]) == pytest.approx(1.0, abs=0.01)
    assert body["questions"] == []


# --- PATCH /api/calls/{id}/speakers -----------------------------------------------------------------


def test_correcting_a_speaker_renames_the_transcript_analysis_and_action_items(alice, completed: str) -> None:
    speakers = alice.get(f"/api/calls/{completed}/transcript").json()["speakers"]
    alice_id = next(s["speakerId"] for s in speakers if s["name"] == "Alice")
    response = alice.patch(f"/api/calls/{completed}/speakers", {"speakers": {alice_id: "Priya"}}, format="json")
    assert response.status_code == 200
    assert any(s["name"] == "Priya" and s["source"] == "user" for s in response.json()["speakers"])
    transcript = alice.get(f"/api/calls/{completed}/transcript").json()
    assert transcript["segments"][1]["speaker"] == "Priya"
    analysis = alice.get(f"/api/calls/{completed}/analysis").json()
    assert analysis["actionItems"][0]["owner"] == "Priya"
    assert {t["name"] for t in analysis["talkTime"]} == {"Priya", "Ravi"}
    assert alice.get("/api/action-items").json()["items"][0]["owner"] == "Priya"


def test_an_unknown_speaker_id_is_400_and_before_completion_422(alice, completed: str, media_root: Path) -> None:
    response = alice.patch(f"/api/calls/{completed}/speakers", {"speakers": {"S9": "X"}}, format="json")
    assert response.status_code == 400 and "speakers" in response.json()["errors"]
    queued = _uploaded(alice)
    response = alice.patch(f"/api/calls/{queued}/speakers", {"speakers": {"S1": "X"}}, format="json")
    assert response.status_code == 422


# --- Action items -----------------------------------------------------------------------------------


def test_open_action_items_are_listed_and_done_ones_leave_the_list(alice, completed: str) -> None:
    (item,) = alice.get("/api/action-items").json()["items"]
    assert item["callId"] == completed
    response = alice.patch(f"/api/action-items/{item['id']}", {"done": True}, format="json")
    assert response.status_code == 200 and response.json()["done"] is True
    assert alice.get("/api/action-items").json()["items"] == []
    assert alice.get(f"/api/calls/{completed}/analysis").json()["actionItems"][0]["done"] is True


def test_action_item_patch_validates_done(alice, completed: str) -> None:
    item = ActionItem.objects.get()
    assert alice.patch(f"/api/action-items/{item.pk}", {"done": "maybe"}, format="json").status_code == 400
    assert alice.patch(f"/api/action-items/{item.pk}", {"done": True, "x": 1}, format="json").status_code == 400
    response = alice.patch("/api/action-items/ai_nope", {"done": True}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "action_item_not_found"


def test_action_items_page_with_a_cursor(alice, media_root: Path) -> None:
    for _ in range(3):
        complete_without_model(_uploaded(alice), [("Speaker 1", 0.0, 2.0, "I will send the contract by Monday.")])
    first = alice.get("/api/action-items?limit=2").json()
    second = alice.get(f"/api/action-items?limit=2&cursor={first['nextCursor']}").json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 3 and second["nextCursor"] is None


# --- DELETE -----------------------------------------------------------------------------------------


def test_deleting_a_call_removes_its_object_rows_and_action_items(alice, completed: str, media_root: Path) -> None:
    call = UploadedCall.objects.get(pk=completed)
    assert stored_files(media_root)
    response = alice.delete(f"/api/calls/{completed}")
    assert response.status_code == 204
    assert stored_files(media_root) == []
    assert not UploadedCall.objects.exists() and not ActionItem.objects.exists()
    assert not MediaEntry.objects.exists()
    assert not Transcription.objects.filter(pk=call.transcription_id).exists()
    assert not TranscriptSegment.objects.exists()
    assert alice.get(f"/api/calls/{completed}").status_code == 404


def test_a_storage_failure_on_delete_keeps_the_call_and_is_503(alice, completed: str, monkeypatch) -> None:
    def refuse(key: str) -> None:
        raise OSError("storage is down")

    monkeypatch.setattr(default_storage, "delete", refuse)
    response = alice.delete(f"/api/calls/{completed}")
    assert response.status_code == 503 and response.json()["code"] == "storage_unavailable"
    assert UploadedCall.objects.filter(pk=completed).exists() and ActionItem.objects.exists()


def test_bulk_delete_counts_deleted_missing_and_failed(alice, media_root: Path, monkeypatch) -> None:
    ids = [_uploaded(alice) for _ in range(3)]
    response = alice.delete(
        "/api/calls", {"callIds": [*ids[:2], "f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6", "junk"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"deleted": 2, "missing": 2, "failed": []}
    assert list(UploadedCall.objects.values_list("pk", flat=True)) == [UploadedCall.objects.get(pk=ids[2]).pk]

    monkeypatch.setattr(default_storage, "delete", lambda key: (_ for _ in ()).throw(OSError("down")))
    response = alice.delete("/api/calls", {"callIds": [ids[2]]}, format="json")
    assert response.json() == {
        "deleted": 0,
        "missing": 0,
        "failed": [{"callId": ids[2], "reason": "storage_unavailable"}],
    }


@pytest.mark.parametrize("body", [{}, {"callIds": []}, {"callIds": "abc"}, {"callIds": ["a"] * 101}])
def test_bulk_delete_validates_its_body(alice, body: dict[str, Any]) -> None:
    response = alice.delete("/api/calls", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/calls"),
        ("delete", "/api/calls"),
        ("get", "/api/calls/status?ids=x"),
        ("get", "/api/calls/f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6"),
        ("get", "/api/calls/f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6/transcript"),
        ("get", "/api/calls/f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6/analysis"),
        ("patch", "/api/calls/f0a1d2e3-4b5c-4d6e-8f70-8192a3b4c5d6/speakers"),
        ("get", "/api/action-items"),
        ("patch", "/api/action-items/ai_x"),
    ],
)
def test_every_endpoint_without_a_user_token_is_401_auth_invalid(method: str, path: str) -> None:
    from rest_framework.test import APIClient

    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401
    assert response.json()["code"] == "auth_invalid"


def test_the_server_key_cannot_read_users_calls(acme, completed: str) -> None:
    assert acme.server().get(f"/api/calls/{completed}").status_code == 403


def test_a_delete_is_recorded_with_who_did_it(alice, completed: str, caplog) -> None:
    caplog.set_level("INFO", logger="scaiwave.audit")

    assert alice.delete(f"/api/calls/{completed}").status_code == 204

    assert audit_traced(caplog, "uploaded_call_deleted", "user:alice")["id"] == completed
