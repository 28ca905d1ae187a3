"""Our live-call endpoints: read, list, start, end, token, delete, by persona (host, another user of the
tenant, the tenant key, another tenant), on the emulator."""

from __future__ import annotations

import jwt
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from calls.live_testing import document_schemas
from calls.models import Call, LiveCall
from livekit_emulator.testing import free_port
from recordings.models import Recording

pytestmark = pytest.mark.django_db

URL = "/v1/live/calls"


def schedule(creds, host: str = "alice", **body) -> dict:
    response = creds.user(host).post(URL, {"host_user_id": host, "title": "AMA", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def conforms(body: dict) -> None:
    validator = Draft202012Validator(document_schemas()["201"], format_checker=FormatChecker())
    assert not [e.message for e in validator.iter_errors(body)]


# --- Reading ------------------------------------------------------------------------------------


def test_any_user_of_the_tenant_reads_a_live_call_by_id(acme, livekit):
    call = schedule(acme)
    for client in (acme.user("alice"), acme.user("bob"), acme.server()):
        response = client.get(f"{URL}/{call['id']}")
        assert response.status_code == 200
        conforms(response.json())
        assert response.json()["id"] == call["id"]


def test_another_tenant_gets_404_for_the_call(acme, globex, livekit):
    call = schedule(acme)
    for client in (globex.user("alice"), globex.server()):
        assert client.get(f"{URL}/{call['id']}").status_code == 404
        assert client.post(f"{URL}/{call['id']}/token").status_code in (403, 404)
        assert client.post(f"{URL}/{call['id']}/end").status_code == 404
        assert client.delete(f"{URL}/{call['id']}").status_code == 404
    assert acme.user("alice").get(f"{URL}/not-a-uuid").json()["code"] == "live_call_not_found"


def test_users_list_the_calls_they_host_and_the_tenant_key_lists_all(acme, globex, livekit):
    mine = schedule(acme, "alice")
    theirs = schedule(acme, "bob")
    schedule(globex, "alice")
    assert [c["id"] for c in acme.user("alice").get(URL).json()["data"]] == [mine["id"]]
    listed = acme.server().get(URL).json()
    assert [c["id"] for c in listed["data"]] == [theirs["id"], mine["id"]]
    for item in listed["data"]:
        conforms(item)


def test_the_list_filters_by_status_and_pages_with_a_cursor(acme, livekit):
    ids = [schedule(acme)["id"] for _ in range(3)]
    LiveCall.objects.filter(pk=ids[0]).update(status=LiveCall.Status.ENDED)
    server = acme.server()
    assert [c["id"] for c in server.get(URL, {"status": "ended"}).json()["data"]] == [ids[0]]
    first = server.get(URL, {"limit": 2}).json()
    second = server.get(URL, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [c["id"] for c in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert server.get(URL, {"status": "sideways"}).status_code == 400
    assert server.get(URL, {"cursor": "garbage"}).status_code == 400


# --- Start --------------------------------------------------------------------------------------


def test_the_host_starts_the_call_which_opens_a_call_and_its_recording(acme, livekit):
    call = schedule(acme)
    response = acme.user("alice").post(f"{URL}/{call['id']}/start")
    assert response.status_code == 200, response.content
    body = response.json()
    conforms(body)
    assert body["status"] == "live" and body["started_at"] is not None
    live = LiveCall.objects.select_related("call", "recording").get(pk=call["id"])
    assert live.call.status == Call.Status.ACTIVE and live.call.livekit_room == call["stream_call_id"]
    assert live.recording.call_id == live.call.pk and live.recording.livekit_room == call["stream_call_id"]
    assert [e["room_name"] for e in livekit.control.state()["egress"]] == [call["stream_call_id"]]


def test_only_the_host_starts_the_call(acme, livekit):
    call = schedule(acme)
    assert acme.user("bob").post(f"{URL}/{call['id']}/start").status_code == 403
    assert acme.server().post(f"{URL}/{call['id']}/start").status_code == 403
    assert LiveCall.objects.get(pk=call["id"]).status == LiveCall.Status.SCHEDULED


def test_starting_twice_is_a_409(acme, livekit):
    call = schedule(acme)
    assert acme.user("alice").post(f"{URL}/{call['id']}/start").status_code == 200
    again = acme.user("alice").post(f"{URL}/{call['id']}/start")
    assert again.status_code == 409 and again.json()["call_status"] == "live"


def test_a_tenant_without_recordings_goes_live_unrecorded(acme, livekit):
    acme.tenant.recordings_enabled = False
    acme.tenant.save()
    call = schedule(acme)
    assert acme.user("alice").post(f"{URL}/{call['id']}/start").json()["status"] == "live"
    assert not Recording.objects.exists()


def test_livekit_failing_at_start_errors_the_call_with_a_502(acme, livekit, settings):
    call = schedule(acme)
    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    settings.LIVEKIT_TIMEOUT = 0.5
    response = acme.user("alice").post(f"{URL}/{call['id']}/start")
    assert response.status_code == 502
    body = response.json()
    Draft202012Validator(document_schemas()["502"]).validate(body)
    assert body["error"] == "provider_error"
    live = LiveCall.objects.get(pk=call["id"])
    assert live.status == LiveCall.Status.ERRORED and "LiveKit" in live.error_reason
    assert live.call is None and not Call.objects.exists() and not Recording.objects.exists()
    shown = acme.user("alice").get(f"{URL}/{call['id']}").json()
    assert shown["status"] == "errored" and shown["error_reason"] == live.error_reason


# --- End ----------------------------------------------------------------------------------------


def test_the_host_or_the_tenant_key_ends_a_live_call(acme, livekit):
    for client in (acme.user("alice"), acme.server()):
        call = schedule(acme)
        acme.user("alice").post(f"{URL}/{call['id']}/start")
        response = client.post(f"{URL}/{call['id']}/end")
        assert response.status_code == 200, response.content
        conforms(response.json())
        assert response.json()["status"] == "ended" and response.json()["ended_at"] is not None
        live = LiveCall.objects.select_related("call").get(pk=call["id"])
        assert live.call.status == Call.Status.ENDED


def test_another_user_cannot_end_it(acme, livekit):
    call = schedule(acme)
    acme.user("alice").post(f"{URL}/{call['id']}/start")
    assert acme.user("bob").post(f"{URL}/{call['id']}/end").status_code == 403
    assert LiveCall.objects.get(pk=call["id"]).status == LiveCall.Status.LIVE


def test_ending_a_call_that_is_not_live_is_a_409(acme, livekit):
    call = schedule(acme)
    response = acme.user("alice").post(f"{URL}/{call['id']}/end")
    assert response.status_code == 409 and response.json()["code"] == "live_call_state_conflict"


# --- Tokens -------------------------------------------------------------------------------------


def grants_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})["video"]


def test_the_host_gets_a_publisher_token_and_anyone_else_a_viewer_token(acme, livekit):
    call = schedule(acme)
    host = acme.user("alice").post(f"{URL}/{call['id']}/token").json()
    viewer = acme.user("bob").post(f"{URL}/{call['id']}/token").json()
    assert host["role"] == "host" and viewer["role"] == "viewer"
    assert host["url"] == livekit.ws_url and host["expiresAt"]
    assert grants_of(host["token"])["canPublish"] is True
    assert grants_of(host["token"])["room"] == call["stream_call_id"]
    assert grants_of(viewer["token"]).get("canPublish") is False
    assert grants_of(viewer["token"])["canSubscribe"] is True


def test_the_tenant_key_gets_no_token_and_an_ended_call_has_none(acme, livekit):
    call = schedule(acme)
    assert acme.server().post(f"{URL}/{call['id']}/token").status_code == 403
    LiveCall.objects.filter(pk=call["id"]).update(status=LiveCall.Status.ENDED)
    assert acme.user("bob").post(f"{URL}/{call['id']}/token").status_code == 409


# --- Delete -------------------------------------------------------------------------------------


def test_the_host_or_the_tenant_key_deletes_a_scheduled_call(acme, livekit):
    for client in (acme.user("alice"), acme.server()):
        call = schedule(acme)
        assert client.delete(f"{URL}/{call['id']}").status_code == 204
        assert not LiveCall.objects.filter(pk=call["id"]).exists()


def test_a_live_call_cannot_be_deleted_and_others_cannot_delete(acme, livekit):
    call = schedule(acme)
    assert acme.user("bob").delete(f"{URL}/{call['id']}").status_code == 403
    acme.user("alice").post(f"{URL}/{call['id']}/start")
    response = acme.user("alice").delete(f"{URL}/{call['id']}")
    assert response.status_code == 409 and response.json()["call_status"] == "live"


# --- No provider --------------------------------------------------------------------------------


def test_without_livekit_configured_start_and_token_are_503_and_nothing_changes(acme, livekit, settings):
    call = schedule(acme)
    settings.LIVEKIT_URL = settings.LIVEKIT_API_KEY = settings.LIVEKIT_API_SECRET = ""
    for path in ("start", "token"):
        response = acme.user("alice").post(f"{URL}/{call['id']}/{path}")
        assert response.status_code == 503, path
        body = response.json()
        Draft202012Validator(document_schemas()["503"]).validate(body)
        assert body["error"] == "provider_not_configured"
    assert LiveCall.objects.get(pk=call["id"]).status == LiveCall.Status.SCHEDULED


def test_a_delete_is_recorded_with_who_did_it(acme, livekit, caplog):
    from scaiwave.models import Event

    caplog.set_level("INFO", logger="scaiwave.audit")
    call = schedule(acme)

    assert acme.user("alice").delete(f"{URL}/{call['id']}").status_code == 204

    [event] = Event.objects.filter(type="live_call.deleted")
    assert event.data["actor"] == "user:alice" and event.data["id"] == call["id"]
    assert any(getattr(r, "actor", None) == "user:alice" for r in caplog.records if r.name == "scaiwave.audit")
