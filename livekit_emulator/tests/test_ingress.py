"""Ingress RPCs through the Python client, and the simulated RTMP/WHIP publisher."""

from __future__ import annotations

import re

import pytest
from livekit import api
from livekit.protocol import ingress as ig

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")

STREAM_KEY = re.compile(r"^[2-9A-HJ-NP-Za-km-z]{12}$")


def create(emu, **fields) -> ig.IngressInfo:
    return lk(emu, lambda c: c.ingress.create_ingress(ig.CreateIngressRequest(**fields)))


def test_rtmp_and_whip_ingress_get_urls_stream_keys_and_transcoding_defaults(emu):
    rtmp = create(emu, input_type=ig.RTMP_INPUT, name="obs", room_name="stage", participant_identity="obs-1")
    whip = create(emu, input_type=ig.WHIP_INPUT, name="browser", room_name="stage", participant_identity="whip-1")

    assert rtmp.ingress_id.startswith("IN_") and STREAM_KEY.match(rtmp.stream_key)
    assert rtmp.url.startswith("rtmp://") and rtmp.reusable and rtmp.enable_transcoding
    assert rtmp.state.status == ig.IngressState.ENDPOINT_INACTIVE
    assert whip.url.startswith("http") and not whip.enable_transcoding and whip.bypass_transcoding


def test_ingress_validation_errors(emu):
    with pytest.raises(api.TwirpError) as no_identity:
        create(emu, input_type=ig.RTMP_INPUT, room_name="r")
    assert (no_identity.value.code, no_identity.value.message) == (
        "invalid_argument",
        "invalid ingress: no participant identity",
    )
    url = create(
        emu, input_type=ig.URL_INPUT, url="https://example.com/live.m3u8", room_name="r", participant_identity="puller"
    )
    assert not url.reusable and url.stream_key == ""
    with pytest.raises(api.TwirpError) as not_reusable:
        lk(emu, lambda c: c.ingress.update_ingress(ig.UpdateIngressRequest(ingress_id=url.ingress_id, name="x")))
    assert not_reusable.value.message == "ingress is not reusable and cannot be modified"


def test_update_list_and_delete(emu):
    info = create(emu, input_type=ig.RTMP_INPUT, name="a", room_name="r1", participant_identity="p")
    create(emu, input_type=ig.RTMP_INPUT, name="b", room_name="r2", participant_identity="q")
    updated = lk(
        emu,
        lambda c: c.ingress.update_ingress(
            ig.UpdateIngressRequest(ingress_id=info.ingress_id, name="renamed", room_name="")
        ),
    )
    assert (updated.name, updated.room_name) == ("renamed", "r1")  # empty means unchanged

    in_r2 = lk(emu, lambda c: c.ingress.list_ingress(ig.ListIngressRequest(room_name="r2")))
    assert [i.name for i in in_r2.items] == ["b"]
    deleted = lk(emu, lambda c: c.ingress.delete_ingress(ig.DeleteIngressRequest(ingress_id=info.ingress_id)))
    assert deleted.state.status == ig.IngressState.ENDPOINT_INACTIVE
    with pytest.raises(api.TwirpError) as gone:
        lk(emu, lambda c: c.ingress.list_ingress(ig.ListIngressRequest(ingress_id=info.ingress_id)))
    assert (gone.value.code, gone.value.status) == ("not_found", 404)


def test_simulated_publisher_starts_and_ends_the_ingress(emu, sink):
    info = create(
        emu,
        input_type=ig.RTMP_INPUT,
        room_name="broadcast",
        participant_identity="streamer",
        participant_name="Streamer",
    )
    publishing = emu.control.ingress_publish(info.ingress_id, tone={"frequency": 440, "seconds": 0.5})
    assert publishing["state"]["status"] == "ENDPOINT_PUBLISHING" and len(publishing["state"]["tracks"]) == 2
    room = emu.control.state()["rooms"][0]
    assert [(p["identity"], p["kind"]) for p in room["participants"]] == [("streamer", "INGRESS")]

    ended = emu.control.ingress_unpublish(info.ingress_id)
    assert ended["state"]["status"] == "ENDPOINT_INACTIVE" and int(ended["state"]["ended_at"]) > 0
    # Ingress events and room events travel in different queues, so only their sets are comparable.
    events = sink.wait_for(lambda ev: {"ingress_ended", "participant_left"} <= {e["event"] for e in ev})
    assert "ingress_started" in [e["event"] for e in events]
    started = next(e for e in events if e["event"] == "ingress_started")
    assert started["ingressInfo"]["ingressId"] == info.ingress_id and started["room"] == {"name": "broadcast"}


def test_ingress_rpcs_need_the_ingress_admin_grant(emu):
    token = api.AccessToken(emu.api_key, emu.api_secret).with_grants(api.VideoGrants(room_create=True)).to_jwt()

    async def call(_):
        async with api.LiveKitAPI.with_token(token, emu.url) as client:
            return await client.ingress.list_ingress(ig.ListIngressRequest())

    with pytest.raises(api.TwirpError) as error:
        lk(emu, call)
    assert (error.value.code, error.value.status) == ("unauthenticated", 401)
