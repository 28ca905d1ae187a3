"""Live transcription endpoints (document 001 "Transcription (Live)") against the LiveKit emulator.

No ScaiWave server listens here, so the egresses started fail to dial; what is checked is what ScaiWave asked
LiveKit for (one track egress per audio track, to the ingest WebSocket with a token for that track) and the
session's life cycle. Audio flowing end to end is test_live_end_to_end.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import LazySettings
from livekit.protocol import models as lk_models
from livekit.protocol import webhook as lk_webhook

from rooms import livekit_gateway as gateway
from rooms.models import Room
from rooms.testing import livekit, livekit_emulator  # noqa: F401
from scaiwave.api.auth import clear_tenant_cache
from scaiwave.models import Event
from transcription.live.services import live_apply_livekit_event
from transcription.live.tokens import ingest_token_verify
from transcription.models import Transcription, TranscriptSegment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _public_url(settings: LazySettings) -> None:
    settings.PUBLIC_BASE_URL = "https://scaiwave.example"
    settings.TRANSCRIPTION_LIVE_INGEST_URL = ""


@pytest.fixture
def start(acme, django_capture_on_commit_callbacks):
    """POST .../transcription/start, running the after-commit callbacks (the egresses) as a real commit would."""

    def call(body: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return acme.server().post("/v1/rooms/standup/transcription/start", body or {}, format="json")

    return call


@pytest.fixture
def room(acme, livekit) -> Room:  # noqa: F811
    assert acme.server().post("/v1/rooms", {"name": "standup"}, format="json").status_code == 201
    return Room.objects.get(tenant=acme.tenant, name="standup")


def join_and_publish(acme, emulator, identity: str, *, kind: str = "audio") -> str:
    token = (
        acme.server()
        .post(
            "/v1/token",
            {"roomId": "standup", "userId": identity, "name": identity.title(), "role": "participant"},
            format="json",
        )
        .json()["token"]
    )
    joined = emulator.control.connect(token)
    published = emulator.control.publish(
        joined["room"], identity, kind=kind, tone={"frequency": 440, "seconds": 30} if kind == "audio" else None
    )
    return str(published["sid"])


def ingest_egresses(room: Room) -> dict[str, dict]:
    """{track sid: {"url", "claims", "status"}} of the track egresses LiveKit has for the room."""
    found = {}
    for info in gateway.egress_list(room_name=room.livekit_name):
        if info.HasField("track") and info.track.websocket_url:
            url = info.track.websocket_url
            claims = ingest_token_verify(parse_qs(urlsplit(url).query)["token"][0])
            found[info.track.track_id] = {"url": url, "claims": claims, "status": info.status}
    return found


def test_start_streams_every_audio_track_to_the_ingest_websocket_with_a_token_for_that_track(
    acme,
    livekit,  # noqa: F811
    room,
    start,
) -> None:
    alice = join_and_publish(acme, livekit, "alice")
    bob = join_and_publish(acme, livekit, "bob")
    join_and_publish(acme, livekit, "carol", kind="video")

    response = start({"participants": {alice: "Alice"}, "options": {"partialResults": True}})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["roomId"] == "standup" and body["status"] == "active" and body["language"] == "en-US"
    assert body["transcriptionId"].startswith("tr_") and body["startedAt"].endswith("Z")
    egresses = ingest_egresses(room)
    assert set(egresses) == {alice, bob}  # audio only
    for sid, identity in ((alice, "alice"), (bob, "bob")):
        assert egresses[sid]["url"].startswith("wss://scaiwave.example/v1/ingest/audio?token=")
        claims = egresses[sid]["claims"]
        assert (claims.transcription_id, claims.track_sid, claims.identity) == (body["transcriptionId"], sid, identity)
    session = Transcription.objects.get(pk=body["transcriptionId"])
    assert session.mode == "live" and session.room == room and session.health == "ok"
    assert session.options == {"partialResults": True, "punctuation": True, "profanityFilter": False}
    assert session.speaker_map == {alice: "Alice"}


def test_start_is_idempotent_while_a_session_is_active(acme, livekit, room, start) -> None:  # noqa: F811
    join_and_publish(acme, livekit, "alice")
    first = start().json()
    again = start({"language": "de-DE"})

    assert again.status_code == 201
    assert again.json() == first
    assert Transcription.objects.filter(room=room, mode="live").count() == 1
    assert len(ingest_egresses(room)) == 1  # no second egress for the same track


def test_an_audio_track_published_later_gets_its_egress_once(acme, livekit, room) -> None:  # noqa: F811
    started = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").json()
    assert ingest_egresses(room) == {}
    sid = join_and_publish(acme, livekit, "alice")
    event = lk_webhook.WebhookEvent(
        event="track_published",
        room=lk_models.Room(name=room.livekit_name),
        participant=lk_models.ParticipantInfo(identity="alice"),
        track=lk_models.TrackInfo(sid=sid, type=lk_models.TrackType.AUDIO),
    )

    live_apply_livekit_event(event, None)

    egresses = ingest_egresses(room)
    assert list(egresses) == [sid]
    assert egresses[sid]["claims"].transcription_id == started["transcriptionId"]


def test_a_published_track_in_a_room_without_a_session_is_left_alone(acme, livekit, room) -> None:  # noqa: F811
    sid = join_and_publish(acme, livekit, "alice")
    event = lk_webhook.WebhookEvent(
        event="track_published",
        room=lk_models.Room(name=room.livekit_name),
        participant=lk_models.ParticipantInfo(identity="alice"),
        track=lk_models.TrackInfo(sid=sid, type=lk_models.TrackType.AUDIO),
    )
    live_apply_livekit_event(event, None)
    assert ingest_egresses(room) == {}


def test_stop_returns_the_segment_count_and_stopping_again_returns_the_same(acme, livekit, room) -> None:  # noqa: F811
    started = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").json()
    session = Transcription.objects.get(pk=started["transcriptionId"])
    for index in range(3):
        TranscriptSegment.objects.create(transcription=session, index=index, start=index, end=index + 1, text="hi")

    stopped = acme.server().post("/v1/rooms/standup/transcription/stop")
    again = acme.server().post("/v1/rooms/standup/transcription/stop")

    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped" and stopped.json()["segmentCount"] == 3
    assert stopped.json()["transcriptionId"] == started["transcriptionId"]
    assert again.json() == stopped.json()
    assert Event.objects.filter(type="transcription.stopped", room_key=str(session.room_id)).count() == 1
    # A new start after a stop is a new session.
    restarted = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").json()
    assert restarted["transcriptionId"] != started["transcriptionId"]


def test_get_returns_segments_since_a_time_and_as_text(acme, livekit, room) -> None:  # noqa: F811
    started = (
        acme.server()
        .post("/v1/rooms/standup/transcription/start", {"participants": {"alice": "Alice"}}, format="json")
        .json()
    )
    session = Transcription.objects.get(pk=started["transcriptionId"])
    first = TranscriptSegment.objects.create(
        transcription=session, index=0, start=1.0, end=2.0, text="Hello.", speaker_label="alice", speaker_name="Alice"
    )
    second = TranscriptSegment.objects.create(
        transcription=session, index=1, start=3.0, end=4.0, text="Hi.", speaker_label="bob", speaker_name="bob"
    )
    # `since` compares at the millisecond it is shown in: two rows made in one millisecond would read as one time.
    TranscriptSegment.objects.filter(pk=second.pk).update(created_at=first.created_at + timedelta(milliseconds=5))
    since = first.created_at.isoformat()

    full = acme.server().get("/v1/rooms/standup/transcription").json()
    later = acme.server().get("/v1/rooms/standup/transcription", {"since": since}).json()
    text = acme.server().get("/v1/rooms/standup/transcription", {"format": "text"})

    assert full["status"] == "active" and full["health"] == "ok" and full["healthDetail"] is None
    assert [s["text"] for s in full["segments"]] == ["Hello.", "Hi."]
    assert full["segments"][0]["speaker"] == "Alice" and full["segments"][0]["speakerLabel"] == "alice"
    assert [s["text"] for s in later["segments"]] == ["Hi."]
    assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
    assert text.content.decode() == "[00:00:01] Alice: Hello.\n[00:00:03] bob: Hi.\n"


def test_since_set_to_a_segments_shown_time_does_not_return_it_again(acme, livekit, room) -> None:  # noqa: F811
    started = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").json()
    session = Transcription.objects.get(pk=started["transcriptionId"])
    first = TranscriptSegment.objects.create(transcription=session, index=0, start=1.0, end=2.0, text="Hello.")
    TranscriptSegment.objects.filter(pk=first.pk).update(
        created_at=first.created_at.replace(microsecond=123_456)  # stored at µs, shown at ms
    )
    shown = acme.server().get("/v1/rooms/standup/transcription").json()["segments"][0]["createdAt"]
    assert shown.endswith(".123Z"), shown

    again = acme.server().get("/v1/rooms/standup/transcription", {"since": shown}).json()

    assert again["segments"] == []


def test_live_speakers_are_named_by_the_map_then_the_token_name_then_the_identity(
    acme,
    livekit,  # noqa: F811
    room,
) -> None:
    from django.utils import timezone

    from rooms.models import RoomParticipant
    from transcription.live.recognizer import Heard
    from transcription.live.services import live_segment_store

    started = acme.server().post(
        "/v1/rooms/standup/transcription/start", {"participants": {"TR_hank": "Hank from the map"}}, format="json"
    )
    acme.user_row("gina-7a33", name="Gina from elsewhere")
    live_room = Room.objects.get(tenant=acme.tenant, name="standup")
    for sid, identity, name in (("PA_g", "gina-7a33", "Gina Token-Name"), ("PA_h", "hank-1", "Hank Token-Name")):
        RoomParticipant.objects.create(room=live_room, sid=sid, identity=identity, name=name, joined_at=timezone.now())
    names = {}
    for track_sid, identity in (("TR_gina", "gina-7a33"), ("TR_hank", "hank-1"), ("TR_ivy", "ivy-2")):
        heard = Heard(
            utterance_id=track_sid, start=0.0, end=1.0, text="Hello.", confidence=None, language="en",
            final=True, speech_end_monotonic=0.0,
        )  # fmt: skip
        segment = live_segment_store(
            transcription_id=started.json()["transcriptionId"], track_sid=track_sid, identity=identity, heard=heard
        )
        assert segment is not None
        names[identity] = segment.speaker_name

    assert names == {"gina-7a33": "Gina Token-Name", "hank-1": "Hank from the map", "ivy-2": "ivy-2"}


def test_a_bad_since_or_format_is_a_validation_problem(acme, livekit, room) -> None:  # noqa: F811
    acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    for params in ({"since": "yesterday"}, {"since": "2026-11-21T12:00:00"}, {"format": "pdf"}):
        response = acme.server().get("/v1/rooms/standup/transcription", params)
        assert response.status_code == 400, params
        assert response.json()["code"] == "validation_failed"


def test_since_with_any_offset_python_accepts_is_answered_never_a_500(acme, livekit, room) -> None:  # noqa: F811
    """Found by make check-api: PostgreSQL refuses offsets past 15:59, which Python parses (up to 23:59)."""
    acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    wide = acme.server().get("/v1/rooms/standup/transcription", {"since": "0358-12-21T19:06:11.70447+22:40"})
    assert wide.status_code == 200, wide.content
    equal = acme.server().get("/v1/rooms/standup/transcription", {"since": "2999-01-01T23:00:00+22:40"})
    assert equal.status_code == 200 and equal.json()["segments"] == []
    before_year_one = acme.server().get("/v1/rooms/standup/transcription", {"since": "0001-01-01T00:00:00+05:00"})
    assert before_year_one.status_code == 400
    assert before_year_one.json()["code"] == "validation_failed"


@pytest.mark.parametrize("key", ["\\u0000", "a\\u0000b", "\\udaa9", ""])
def test_a_speaker_map_key_postgresql_cannot_store_is_a_validation_problem(acme, livekit, room, key) -> None:  # noqa: F811
    """Found by make check-api: a NUL (or an unpaired surrogate) in a map key was a 500 when the map was saved."""
    body = '{"participants": {"' + key + '": "Alice", "TR_ok": "Bob"}}'  # raw JSON: the escapes reach the parser
    started = acme.server().post("/v1/rooms/standup/transcription/start", body, content_type="application/json")
    assert started.status_code == 400, started.content
    assert started.json()["code"] == "validation_failed"
    assert "participants" in started.json()["errors"]
    assert acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").status_code == 201
    patched = acme.server().patch("/v1/rooms/standup/transcription/speakers", body, content_type="application/json")
    assert patched.status_code == 400 and patched.json()["code"] == "validation_failed"
    speakers = acme.server().get("/v1/rooms/standup/transcription").json()
    assert speakers["status"] == "active"  # the session is untouched


def test_speakers_are_merged_into_the_map_of_the_active_session(acme, livekit, room) -> None:  # noqa: F811
    started = (
        acme.server()
        .post("/v1/rooms/standup/transcription/start", {"participants": {"TR_a": "A"}}, format="json")
        .json()
    )

    response = acme.server().patch(
        "/v1/rooms/standup/transcription/speakers", {"participants": {"TR_b": "Bob"}}, format="json"
    )

    assert response.status_code == 204
    assert Transcription.objects.get(pk=started["transcriptionId"]).speaker_map == {"TR_a": "A", "TR_b": "Bob"}
    bad = acme.server().patch("/v1/rooms/standup/transcription/speakers", {"participants": ["x"]}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"


def test_without_a_session_get_stop_and_speakers_are_not_found(acme, livekit, room) -> None:  # noqa: F811
    assert acme.server().get("/v1/rooms/standup/transcription").json()["code"] == "transcription_not_found"
    assert acme.server().post("/v1/rooms/standup/transcription/stop").status_code == 404
    response = acme.server().patch(
        "/v1/rooms/standup/transcription/speakers", {"participants": {"a": "A"}}, format="json"
    )
    assert response.status_code == 404 and response.json()["code"] == "transcription_not_found"


def test_another_tenants_room_is_not_found(acme, globex, livekit, room) -> None:  # noqa: F811
    response = globex.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "room_not_found"
    assert globex.server().get("/v1/rooms/standup/transcription").status_code == 404


def test_a_user_token_is_not_enough(acme, livekit, room) -> None:  # noqa: F811
    response = acme.user("alice").post("/v1/rooms/standup/transcription/start", {}, format="json")
    assert response.status_code in (401, 403)
    assert not Transcription.objects.filter(room=room).exists()


def test_bad_input_is_a_validation_problem(acme, livekit, room) -> None:  # noqa: F811
    for body in ({"options": {"punctuation": "maybe"}}, {"participants": "alice"}, {"language": "xx-YY"}):
        response = acme.server().post("/v1/rooms/standup/transcription/start", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] in ("validation_failed", "unsupported_language")


def test_disabled_add_on_is_503_and_health_says_so(acme, settings: LazySettings, room) -> None:
    settings.TRANSCRIPTION_LIVE_ENABLED = False
    response = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "transcription_live_unavailable"
    assert acme.server().get("/v1/health").json()["capabilities"]["transcriptionLive"] is False

    settings.TRANSCRIPTION_LIVE_ENABLED = True
    assert acme.server().get("/v1/health").json()["capabilities"]["transcriptionLive"] is True


def test_no_model_is_503(acme, settings: LazySettings, room) -> None:
    settings.TRANSCRIPTION_LIVE_MODEL = str(Path("/nonexistent/model"))
    response = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "transcription_live_unavailable"
    assert acme.server().get("/v1/health").json()["capabilities"]["transcriptionLive"] is False


def test_a_tenant_without_transcription_is_refused(acme, room) -> None:
    acme.tenant.transcription_enabled = False
    acme.tenant.save(update_fields=["transcription_enabled"])
    clear_tenant_cache()  # tenants are cached per process for a short while
    response = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "transcription_disabled"


def test_closing_the_room_stops_its_session(acme, livekit, room) -> None:  # noqa: F811
    started = acme.server().post("/v1/rooms/standup/transcription/start", {}, format="json").json()
    assert acme.server().delete("/v1/rooms/standup").status_code == 204
    session = Transcription.objects.get(pk=started["transcriptionId"])
    assert session.status == "stopped" and session.stopped_at is not None


def test_an_ingest_egress_that_fails_marks_the_session_degraded_with_the_track(
    acme,
    livekit,  # noqa: F811
    room,
    start,
) -> None:
    sid = join_and_publish(acme, livekit, "alice")
    session_id = start().json()["transcriptionId"]
    (egress,) = [info for info in gateway.egress_list(room_name=room.livekit_name) if info.track.track_id == sid]
    # Nothing listens at PUBLIC_BASE_URL here: LiveKit's dial fails and it reports the egress as failed.
    failed = livekit.control.wait_for_egress(egress.egress_id)
    assert failed["status"] == "EGRESS_FAILED"
    info = gateway.egress_list(egress_id=egress.egress_id)[0]

    live_apply_livekit_event(lk_webhook.WebhookEvent(event="egress_ended", egress_info=info), None)
    live_apply_livekit_event(lk_webhook.WebhookEvent(event="egress_ended", egress_info=info), None)  # again

    body = acme.server().get("/v1/rooms/standup/transcription").json()
    assert body["transcriptionId"] == session_id and body["health"] == "degraded"
    assert f"track {sid} is not transcribed: LiveKit egress failed" in body["healthDetail"]
    assert len(body["healthDetail"].splitlines()) == 1


@pytest.mark.parametrize(
    ("stt_model", "live_model", "language", "chosen"),
    [
        ("base", "", "en-US", "tiny.en"),  # the fast English model meets the 2 s live target on 2 cores
        ("base", "", "de", "base"),  # multilingual sessions keep the multilingual model
        ("base", "", "auto", "base"),  # an unknown language is detected by the multilingual model
        ("base", "base", "en-GB", "base"),  # an operator's explicit choice wins
        ("tiny.en", "", "en", "tiny.en"),
    ],
)
@pytest.mark.usefixtures("livekit")
def test_a_live_session_takes_the_model_for_its_language(acme, room, settings, stt_model, live_model, language, chosen):
    settings.STT_MODEL, settings.TRANSCRIPTION_LIVE_MODEL = stt_model, live_model
    started = acme.server().post("/v1/rooms/standup/transcription/start", {"language": language}, format="json")
    assert started.status_code == 201, started.content
    assert Transcription.objects.get(pk=started.json()["transcriptionId"]).model == chosen
