"""Ingress: RTMP/WHIP endpoints publishing into a room."""

from __future__ import annotations

import pytest

from scaiwave.testing import audit_traced

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    from rooms.models import Room

    return Room.objects.get(tenant=acme.tenant, name="standup")


def test_create_rtmp_ingress_by_default_with_url_and_stream_key(acme, livekit, room):
    response = acme.server().post("/v1/rooms/standup/ingress", {}, format="json")

    assert response.status_code == 201, response.content
    info = response.json()
    assert info["ingressId"].startswith("IN_")
    assert info["inputType"] == "RTMP_INPUT"
    assert info["url"].startswith("rtmp")
    assert info["streamKey"]
    assert info["participantName"] == "Ingress Stream"
    assert info["participantIdentity"]
    assert info["roomName"] == "standup"
    stored = livekit.control.state()["ingress"]
    assert [(i["ingress_id"], i["room_name"]) for i in stored] == [(info["ingressId"], room.livekit_name)]


def test_create_whip_ingress_with_a_chosen_identity(acme, livekit, room):
    response = acme.server().post(
        "/v1/rooms/standup/ingress",
        {"type": "whip", "participantName": "OBS", "participantIdentity": "obs-1"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["inputType"] == "WHIP_INPUT"
    assert response.json()["participantIdentity"] == "obs-1"
    assert response.json()["participantName"] == "OBS"


def test_create_ingress_of_an_unknown_type_is_a_400(acme, livekit, room):
    response = acme.server().post("/v1/rooms/standup/ingress", {"type": "srt"}, format="json")

    assert response.status_code == 400
    assert "type" in response.json()["errors"]


def test_create_ingress_with_an_idempotency_key_creates_one(acme, livekit, room):
    client = acme.server()
    first = client.post("/v1/rooms/standup/ingress", {}, format="json", HTTP_IDEMPOTENCY_KEY="i1")
    again = client.post("/v1/rooms/standup/ingress", {}, format="json", HTTP_IDEMPOTENCY_KEY="i1")

    assert again.json()["ingressId"] == first.json()["ingressId"]
    assert len(livekit.control.state()["ingress"]) == 1


def test_list_ingress_shows_only_this_rooms(acme, livekit, room):
    acme.server().post("/v1/rooms", {"name": "other"}, format="json")
    mine = acme.server().post("/v1/rooms/standup/ingress", {}, format="json").json()
    acme.server().post("/v1/rooms/other/ingress", {}, format="json")

    response = acme.server().get("/v1/rooms/standup/ingress")

    assert response.status_code == 200
    assert [i["ingressId"] for i in response.json()["ingress"]] == [mine["ingressId"]]


def test_delete_ingress_removes_it_from_livekit(acme, livekit, room):
    info = acme.server().post("/v1/rooms/standup/ingress", {}, format="json").json()

    response = acme.server().delete(f"/v1/rooms/standup/ingress/{info['ingressId']}")

    assert response.status_code == 204
    assert livekit.control.state()["ingress"] == []


def test_delete_of_another_rooms_ingress_is_a_404_and_keeps_it(acme, globex, livekit, room):
    globex.server().post("/v1/rooms", {"name": "standup"}, format="json")
    theirs = globex.server().post("/v1/rooms/standup/ingress", {}, format="json").json()

    response = acme.server().delete(f"/v1/rooms/standup/ingress/{theirs['ingressId']}")

    assert response.status_code == 404
    assert response.json()["code"] == "ingress_not_found"
    assert len(livekit.control.state()["ingress"]) == 1


def test_delete_unknown_ingress_is_a_404(acme, livekit, room):
    assert acme.server().delete("/v1/rooms/standup/ingress/IN_nope").status_code == 404


def test_deleting_the_room_deletes_its_ingress(acme, livekit, room):
    acme.server().post("/v1/rooms/standup/ingress", {}, format="json")

    acme.server().delete("/v1/rooms/standup")

    assert livekit.control.state()["ingress"] == []


def test_a_delete_is_recorded_with_who_did_it(acme, livekit, room, caplog):
    caplog.set_level("INFO", logger="scaiwave.audit")
    info = acme.server().post("/v1/rooms/standup/ingress", {}, format="json").json()

    assert acme.server().delete(f"/v1/rooms/standup/ingress/{info['ingressId']}").status_code == 204

    assert audit_traced(caplog, "ingress_deleted", "server")["id"] == info["ingressId"]
