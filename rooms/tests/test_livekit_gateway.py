"""Contract tests of rooms.livekit_gateway against the LiveKit emulator over real HTTP (no mocks):
tokens checked with LiveKit's own TokenVerifier, every RPC the gateway uses, and the error mapping
driven by the emulator's failure switch."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from livekit import api

from livekit_emulator.testing import wait_until
from rooms import livekit_gateway as gateway
from rooms.testing import sign_webhook, webhook_body

# The gateway needs no database; `settings` is pytest-django's override fixture.


def verifier(livekit):
    return api.TokenVerifier(livekit.api_key, livekit.api_secret)


# --- Tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("host", {"canPublish": True, "canSubscribe": True, "canPublishData": True, "roomAdmin": True}),
        ("moderator", {"canPublish": True, "canSubscribe": True, "canPublishData": True}),
        ("participant", {"canPublish": True, "canSubscribe": True, "canPublishData": True}),
        ("viewer", {"canPublish": False, "canSubscribe": True, "canPublishData": False}),
    ],
)
def test_mint_token_carries_the_role_grants(livekit, role, expected):
    minted = gateway.mint_token(room_name="r1", identity="alice", name="Alice", role=role)

    claims = verifier(livekit).verify(minted.token)
    video = claims.video
    assert (claims.identity, claims.name, video.room, video.room_join) == ("alice", "Alice", "r1", True)
    assert video.can_publish is expected["canPublish"]
    assert video.can_subscribe is expected["canSubscribe"]
    assert video.can_publish_data is expected["canPublishData"]
    assert video.room_admin is expected.get("roomAdmin")
    assert video.room_create is None and video.room_record is None


def test_mint_token_for_internal_participants_metadata_attributes_and_ttl(livekit):
    minted = gateway.mint_token(
        room_name="r1",
        identity="recorder-1",
        metadata='{"a":1}',
        attributes={"k": "v"},
        ttl_seconds=120,
        hidden=True,
        recorder=True,
    )

    claims = verifier(livekit).verify(minted.token)
    assert claims.video.hidden is True and claims.video.recorder is True
    assert claims.metadata == '{"a":1}'
    assert claims.attributes == {"k": "v"}
    assert timedelta(seconds=110) < minted.expires_at - minted.expires_at.now(minted.expires_at.tzinfo)
    assert minted.expires_at - minted.expires_at.now(minted.expires_at.tzinfo) <= timedelta(seconds=120)


def test_mint_token_refuses_an_unknown_role(livekit):
    with pytest.raises(ValueError):
        gateway.mint_token(room_name="r1", identity="a", role="owner")


def test_a_minted_token_is_accepted_by_the_emulator(livekit):
    minted = gateway.mint_token(room_name="r1", identity="alice", role="participant")

    joined = livekit.control.connect(minted.token)

    assert joined["identity"] == "alice" and joined["room"] == "r1"


# --- Rooms and participants -----------------------------------------------------------------------


def test_room_create_list_get_update_delete(livekit):
    created = gateway.room_create(name="r1", empty_timeout=60, max_participants=5, metadata="m")
    assert created.sid.startswith("RM_") and created.max_participants == 5

    assert [r.name for r in gateway.room_list()] == ["r1"]
    assert gateway.room_get("r1").sid == created.sid
    assert gateway.room_get("nope") is None
    assert gateway.room_update_metadata("r1", "m2").metadata == "m2"
    assert gateway.to_json(created)["emptyTimeout"] == 60

    gateway.room_delete("r1")
    assert gateway.room_list() == []


def test_room_create_is_idempotent_in_livekit(livekit):
    first = gateway.room_create(name="r1")
    again = gateway.room_create(name="r1")

    assert first.sid == again.sid


def test_participants_list_get_mute_remove(livekit):
    gateway.room_create(name="r1")
    livekit.control.connect(gateway.mint_token(room_name="r1", identity="alice").token)
    track = livekit.control.publish("r1", "alice", tone={"frequency": 440, "seconds": 30})

    assert [p.identity for p in gateway.participant_list("r1")] == ["alice"]
    assert gateway.participant_get("r1", "alice").tracks[0].sid == track["sid"]
    assert gateway.track_mute("r1", "alice", track["sid"]).muted is True
    assert gateway.participant_get("r1", "alice").tracks[0].muted is True

    gateway.participant_remove("r1", "alice")
    assert gateway.participant_list("r1") == []


def test_egress_start_list_stop(livekit):
    gateway.room_create(name="r1")
    livekit.control.connect(gateway.mint_token(room_name="r1", identity="alice").token)
    track = livekit.control.publish("r1", "alice", tone={"frequency": 440, "seconds": 30})

    composite = gateway.egress_start_room_composite(room_name="r1", filepath="rec/{room_name}.mp4", audio_only=True)
    single = gateway.egress_start_track(room_name="r1", track_sid=track["sid"], filepath="rec/t.ogg")

    assert composite.egress_id.startswith("EG_") and single.egress_id.startswith("EG_")
    assert {e.egress_id for e in gateway.egress_list(room_name="r1")} == {composite.egress_id, single.egress_id}
    stopped = gateway.egress_stop(composite.egress_id)
    assert stopped.egress_id == composite.egress_id
    wait_until(lambda: composite.egress_id not in {e.egress_id for e in gateway.egress_list(active=True)}, 10)


def test_ingress_create_list_delete(livekit):
    rtmp = gateway.ingress_create(room_name="r1", input_type="rtmp", participant_identity="obs", participant_name="OBS")
    whip = gateway.ingress_create(room_name="r1", input_type="whip", participant_identity="w", participant_name="W")

    assert rtmp.url.startswith("rtmp") and rtmp.stream_key
    assert whip.input_type == 1
    assert {i.ingress_id for i in gateway.ingress_list(room_name="r1")} == {rtmp.ingress_id, whip.ingress_id}
    assert [i.ingress_id for i in gateway.ingress_list(ingress_id=rtmp.ingress_id)] == [rtmp.ingress_id]

    gateway.ingress_delete(rtmp.ingress_id)
    assert [i.ingress_id for i in gateway.ingress_list(room_name="r1")] == [whip.ingress_id]


def test_verify_webhook_accepts_livekits_signature_and_rejects_tampering(livekit):
    from livekit.protocol import webhook as lk_webhook

    body = webhook_body(lk_webhook.WebhookEvent(event="room_started", id="EV_1", created_at=int(time.time())))

    assert gateway.verify_webhook(body, sign_webhook(body)).event == "room_started"
    with pytest.raises(ValueError):
        gateway.verify_webhook(body + b" ", sign_webhook(body))
    with pytest.raises(ValueError):
        gateway.verify_webhook(body, sign_webhook(body, api_key="other", api_secret="x" * 32))


# --- Error mapping ------------------------------------------------------------------------------


def test_unreachable_livekit_is_livekit_unreachable_502(livekit):
    livekit.control.faults(mode="unreachable")

    with pytest.raises(gateway.LiveKitUnreachable) as caught:
        gateway.room_list()

    assert caught.value.status == 502 and caught.value.code == "livekit_unreachable"


def test_a_closed_port_is_livekit_unreachable(livekit, settings):
    from livekit_emulator.testing import free_port

    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(gateway.LiveKitUnreachable):
        gateway.room_create(name="r1")


def test_a_slow_livekit_times_out_within_the_bound_as_a_502(livekit, settings):
    settings.LIVEKIT_TIMEOUT = 0.5
    livekit.control.faults(mode="slow", slow_seconds=15)

    started = time.monotonic()
    with pytest.raises(gateway.LiveKitUnreachable):
        gateway.room_delete("r1")  # not retried: one bounded wait
    elapsed = time.monotonic() - started

    assert elapsed < 5  # the bound is LIVEKIT_TIMEOUT + 1 s; LiveKit would have answered after 15 s


def test_a_5xx_from_livekit_is_a_502(livekit):
    livekit.control.faults(mode="error")

    with pytest.raises(gateway.LiveKitError) as caught:
        gateway.room_create(name="r1")

    assert caught.value.status == 502


def test_an_unknown_room_is_livekit_not_found_404(livekit):
    with pytest.raises(gateway.LiveKitNotFound) as caught:
        gateway.room_delete("nope")

    assert caught.value.status == 404


def test_an_unknown_participant_is_livekit_not_found_404(livekit):
    gateway.room_create(name="r1")

    with pytest.raises(gateway.LiveKitNotFound):
        gateway.participant_remove("r1", "ghost")


def test_a_wrong_api_secret_is_a_502_failure_with_livekits_status(livekit, settings):
    settings.LIVEKIT_API_SECRET = "wrong-secret-that-is-long-enough-for-hs256"

    with pytest.raises(gateway.LiveKitFailure) as caught:
        gateway.room_list()

    assert caught.value.status == 502 and caught.value.livekit_status == 401


def test_no_livekit_url_is_livekit_not_configured_503(settings):
    settings.LIVEKIT_URL = ""

    with pytest.raises(gateway.LiveKitNotConfigured) as caught:
        gateway.room_list()

    assert caught.value.status == 503
