"""POST /v1/token and /v1/token/refresh: LiveKit tokens with the role grants of document 001."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from livekit import api

from rooms.models import Room, RoomBan

pytestmark = pytest.mark.django_db


def body(**overrides):
    return {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant", **overrides}


def verify(livekit, token):
    return api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)


def test_token_is_a_livekit_token_for_the_tenants_room(acme, livekit, settings):
    response = acme.server().post("/v1/token", body(metadata={"team": "blue"}), format="json")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["url"] == settings.LIVEKIT_PUBLIC_URL
    claims = verify(livekit, data["token"])
    assert claims.identity == "alice"
    assert claims.name == "Alice"
    assert claims.metadata == '{"team":"blue"}'
    assert claims.video.room == Room.livekit_name_for(acme.tenant, "standup")
    assert claims.video.room_join is True


def test_token_expiry_follows_the_configured_ttl(acme, livekit, settings):
    settings.LIVEKIT_TOKEN_TTL = 600

    data = acme.server().post("/v1/token", body(), format="json").json()

    expires_at = datetime.strptime(data["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((expires_at - datetime.now(UTC)) - timedelta(seconds=600)) < timedelta(seconds=5)
    assert data["expiresAt"].endswith(".000Z")


@pytest.mark.parametrize(
    ("role", "publish", "admin"),
    [("host", True, True), ("moderator", True, None), ("participant", True, None), ("viewer", False, None)],
)
def test_each_role_gets_its_grants(acme, livekit, role, publish, admin):
    data = acme.server().post("/v1/token", body(role=role), format="json").json()

    video = verify(livekit, data["token"]).video
    assert video.can_publish is publish
    assert video.can_publish_data is publish
    assert video.can_subscribe is True
    assert video.room_admin is admin


def test_a_viewer_token_cannot_publish_in_the_emulator(acme, livekit):
    token = acme.server().post("/v1/token", body(role="viewer"), format="json").json()["token"]
    joined = livekit.control.connect(token)

    from livekit_emulator.testing import EmulatorControlError

    with pytest.raises(EmulatorControlError):
        livekit.control.publish(joined["room"], "alice", tone={"frequency": 440, "seconds": 1})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"roomId": ""}, "roomId"),
        ({"roomId": "a/b"}, "roomId"),
        ({"userId": ""}, "userId"),
        ({"name": None}, "name"),
        ({"role": "owner"}, "role"),
        ({"metadata": "text"}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
    ],
)
def test_bad_token_requests_are_400_problems_listing_the_field(acme, livekit, payload, field):
    response = acme.server().post("/v1/token", body(**payload), format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]


def test_missing_fields_are_all_listed(acme, livekit):
    response = acme.server().post("/v1/token", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"roomId", "userId", "name", "role"}


def test_a_malformed_json_body_is_a_400_problem(acme, livekit):
    response = acme.server().post("/v1/token", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_token_without_livekit_configured_is_a_503(acme, settings):
    settings.LIVEKIT_API_KEY = ""
    settings.LIVEKIT_API_SECRET = ""

    response = acme.server().post("/v1/token", body(), format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "livekit_not_configured"


def test_refresh_reissues_a_token_with_the_same_body(acme, livekit):
    response = acme.server().post("/v1/token/refresh", body(role="host"), format="json")

    assert response.status_code == 200
    assert verify(livekit, response.json()["token"]).video.room_admin is True


def test_refresh_is_refused_for_a_kicked_participant_within_the_ban_window(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    token = acme.server().post("/v1/token", body(), format="json").json()["token"]
    livekit.control.connect(token)
    assert acme.server().delete("/v1/rooms/standup/participants/alice").status_code == 204

    response = acme.server().post("/v1/token/refresh", body(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "participant_banned"
    other = acme.server().post("/v1/token/refresh", body(userId="bob"), format="json")
    assert other.status_code == 200


def test_refresh_is_allowed_again_after_the_ban_window(acme, livekit):
    RoomBan.objects.create(
        tenant=acme.tenant, room_name="standup", identity="alice", until=datetime.now(UTC) - timedelta(seconds=1)
    )

    assert acme.server().post("/v1/token/refresh", body(), format="json").status_code == 200


def test_a_ban_in_one_tenant_does_not_affect_another(acme, globex, livekit):
    RoomBan.objects.create(
        tenant=acme.tenant, room_name="standup", identity="alice", until=datetime.now(UTC) + timedelta(minutes=5)
    )

    assert globex.server().post("/v1/token/refresh", body(), format="json").status_code == 200
    assert acme.server().post("/v1/token/refresh", body(), format="json").status_code == 403


def test_refresh_is_refused_for_a_removed_member(acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    acme.server().put("/v1/rooms/standup/members/alice", {"powerLevel": 0}, format="json")
    acme.server().delete("/v1/rooms/standup/members/alice")

    response = acme.server().post("/v1/token/refresh", body(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "member_removed"
