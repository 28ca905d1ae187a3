"""POST /v1/token and /v1/token/refresh: LiveKit tokens with the role grants of document 001.

Every test runs twice (the `token_api` fixture, rooms/tests/token_api.py): through Django and the DRF views, and
through scaiwave.asgi.application, where rooms.token_asgi answers without them. Both must say the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from livekit import api

from rooms.models import Room, RoomBan
from rooms.services import iso_ms

pytestmark = pytest.mark.django_db


def body(**overrides):
    return {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant", **overrides}


def verify(livekit, token):
    return api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(token)


def test_token_is_a_livekit_token_for_the_tenants_room(token_api, acme, livekit, settings):
    response = token_api.post("/v1/token", body(metadata={"team": "blue"}), key=acme.api_secret)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"token", "url", "expiresAt"}
    assert data["url"] == settings.LIVEKIT_PUBLIC_URL
    claims = verify(livekit, data["token"])
    assert claims.identity == "alice"
    assert claims.name == "Alice"
    assert claims.metadata == '{"team":"blue"}'
    assert claims.video.room == Room.livekit_name_for(acme.tenant, "standup")
    assert claims.video.room_join is True


def test_each_tenants_key_mints_for_its_own_room_namespace(token_api, acme, globex, livekit):
    acme_token = token_api.post("/v1/token", body(), key=acme.api_secret).json()["token"]
    globex_token = token_api.post("/v1/token", body(), key=globex.api_secret).json()["token"]

    assert verify(livekit, acme_token).video.room == Room.livekit_name_for(acme.tenant, "standup")
    assert verify(livekit, globex_token).video.room == Room.livekit_name_for(globex.tenant, "standup")


def test_token_expiry_follows_the_configured_ttl(token_api, acme, livekit, settings):
    settings.LIVEKIT_TOKEN_TTL = 600

    data = token_api.post("/v1/token", body(), key=acme.api_secret).json()

    expires_at = datetime.strptime(data["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((expires_at - datetime.now(UTC)) - timedelta(seconds=600)) < timedelta(seconds=5)
    assert data["expiresAt"].endswith(".000Z")


@pytest.mark.parametrize(
    ("role", "publish", "admin"),
    [("host", True, True), ("moderator", True, None), ("participant", True, None), ("viewer", False, None)],
)
@pytest.mark.parametrize("path", ["/v1/token", "/v1/token/refresh"])
def test_each_role_gets_its_grants(token_api, acme, livekit, path, role, publish, admin):
    response = token_api.post(path, body(role=role), key=acme.api_secret)

    assert response.status_code == 200
    video = verify(livekit, response.json()["token"]).video
    assert video.can_publish is publish
    assert video.can_publish_data is publish
    assert video.can_subscribe is True
    assert video.room_admin is admin


def test_a_viewer_token_cannot_publish_in_the_emulator(token_api, acme, livekit):
    token = token_api.post("/v1/token", body(role="viewer"), key=acme.api_secret).json()["token"]
    joined = livekit.control.connect(token)

    from livekit_emulator.testing import EmulatorControlError

    with pytest.raises(EmulatorControlError):
        livekit.control.publish(joined["room"], "alice", tone={"frequency": 440, "seconds": 1})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"roomId": ""}, "roomId"),
        ({"roomId": "a/b"}, "roomId"),
        ({"roomId": "x" * 201}, "roomId"),
        ({"userId": ""}, "userId"),
        ({"userId": "bob\tsmith"}, "userId"),
        ({"name": None}, "name"),
        ({"name": "  "}, "name"),
        ({"role": "owner"}, "role"),
        ({"metadata": "text"}, "metadata"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"metadata": None}, "metadata"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/token", "/v1/token/refresh"])
def test_bad_token_requests_are_400_problems_listing_the_field(token_api, acme, livekit, path, payload, field):
    response = token_api.post(path, body(**payload), key=acme.api_secret)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert field in problem["errors"]
    assert problem["detail"].startswith(f"The request is not valid: {field}: ")


def test_missing_fields_are_all_listed(token_api, acme, livekit):
    response = token_api.post("/v1/token", {}, key=acme.api_secret)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"roomId", "userId", "name", "role"}


def test_an_empty_body_lists_the_missing_fields(token_api, acme, livekit):
    response = token_api.post("/v1/token", raw=b"", key=acme.api_secret)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"roomId", "userId", "name", "role"}


def test_a_body_that_is_not_an_object_is_a_400_problem(token_api, acme, livekit):
    response = token_api.post("/v1/token", [body()], key=acme.api_secret)

    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}


def test_surrounding_spaces_are_kept_as_sent(token_api, acme, livekit):
    response = token_api.post(
        "/v1/token", body(name=" Alice ", userId=" alice", roomId="  spaced  "), key=acme.api_secret
    )

    claims = verify(livekit, response.json()["token"])
    assert (claims.identity, claims.name) == (" alice", " Alice ")
    assert claims.video.room == "  spaced  "


def test_the_livekit_room_is_the_room_id_and_only_a_second_tenant_gets_a_prefix(token_api, acme, globex, livekit):
    first = token_api.post("/v1/token", body(), key=acme.api_secret)
    second = token_api.post("/v1/token", body(), key=globex.api_secret)

    assert verify(livekit, first.json()["token"]).video.room == "standup"
    assert verify(livekit, second.json()["token"]).video.room == f"{globex.tenant.pk}--standup"


@pytest.mark.parametrize("room_id", ["scaiwave-call-abc", "tn_abc123--standup"])
def test_a_room_id_read_as_a_calls_or_another_tenants_livekit_room_is_refused(token_api, acme, livekit, room_id):
    response = token_api.post("/v1/token", body(roomId=room_id), key=acme.api_secret)

    assert response.status_code == 400
    assert response.json()["code"] == "room_name_reserved"


def test_names_of_only_spaces_are_refused(token_api, acme, livekit):
    response = token_api.post("/v1/token", body(roomId="   ", userId=" "), key=acme.api_secret)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"roomId", "userId"}


def test_a_malformed_json_body_is_a_400_problem(token_api, acme, livekit):
    response = token_api.post("/v1/token", raw=b"{not json", key=acme.api_secret)

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_no_key_is_401_and_a_user_token_is_403(token_api, acme, livekit):
    anonymous = token_api.post("/v1/token", body(), key=None)
    as_user = token_api.post(
        "/v1/token", body(), key=None, headers={"Authorization": f"Bearer {acme.user_token('alice')}"}
    )

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "auth_invalid"
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="scaiwave", X-API-Key'
    assert as_user.status_code == 403
    assert as_user.json()["code"] == "forbidden"


@pytest.mark.parametrize("key", ["not-a-key", ""])
def test_a_bad_key_is_401_before_the_body_is_looked_at(token_api, acme, livekit, key):
    response = token_api.post("/v1/token", raw=b"{not json", key=key)

    assert response.status_code == 401
    assert response.json()["detail"] == "The API key is not valid."
    assert response["WWW-Authenticate"] == 'Bearer realm="scaiwave", X-API-Key'


def test_token_without_livekit_configured_is_a_503(token_api, acme, settings):
    settings.LIVEKIT_API_KEY = ""
    settings.LIVEKIT_API_SECRET = ""

    response = token_api.post("/v1/token", body(), key=acme.api_secret)

    assert response.status_code == 503
    assert response.json()["code"] == "livekit_not_configured"


def test_over_the_server_rate_the_answer_is_429_with_retry_after(token_api, acme, livekit, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "server": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    statuses = [token_api.post("/v1/token", body(), key=acme.api_secret).status_code for _ in range(2)]
    refused = token_api.post("/v1/token/refresh", body(), key=acme.api_secret)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["detail"].startswith("Request was throttled. Expected available in ")
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_an_oversized_body_is_413(token_api, acme, livekit, settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048

    response = token_api.post("/v1/token", body(metadata={"pad": "x" * 4096}), key=acme.api_secret)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_a_safe_request_id_is_echoed_and_an_unsafe_one_replaced(token_api, acme, livekit):
    echoed = token_api.post("/v1/token", body(), key=acme.api_secret, headers={"X-Request-Id": "req-42.a:b"})
    replaced = token_api.post("/v1/token", body(role="x"), key=acme.api_secret, headers={"X-Request-Id": "a b"})

    assert echoed["X-Request-Id"] == "req-42.a:b"
    assert replaced.status_code == 400
    assert len(replaced["X-Request-Id"]) == 32 and replaced["X-Request-Id"] != "a b"


def test_refresh_reissues_a_token_with_the_same_body(token_api, acme, livekit):
    response = token_api.post("/v1/token/refresh", body(role="host"), key=acme.api_secret)

    assert response.status_code == 200
    assert verify(livekit, response.json()["token"]).video.room_admin is True


def test_refresh_is_refused_for_a_kicked_participant_within_the_ban_window(token_api, acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    token = token_api.post("/v1/token", body(), key=acme.api_secret).json()["token"]
    livekit.control.connect(token)
    assert acme.server().delete("/v1/rooms/standup/participants/alice").status_code == 204
    ban = RoomBan.objects.get(tenant=acme.tenant, room_name="standup", identity="alice")

    response = token_api.post("/v1/token/refresh", body(), key=acme.api_secret)

    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "participant_banned"
    assert problem["retryAfter"] == iso_ms(ban.until)
    assert token_api.post("/v1/token", body(), key=acme.api_secret).status_code == 200  # a fresh token is allowed
    other = token_api.post("/v1/token/refresh", body(userId="bob"), key=acme.api_secret)
    assert other.status_code == 200


def test_refresh_is_allowed_again_after_the_ban_window(token_api, acme, livekit):
    RoomBan.objects.create(
        tenant=acme.tenant, room_name="standup", identity="alice", until=datetime.now(UTC) - timedelta(seconds=1)
    )

    assert token_api.post("/v1/token/refresh", body(), key=acme.api_secret).status_code == 200


def test_a_ban_in_one_tenant_does_not_affect_another(token_api, acme, globex, livekit):
    RoomBan.objects.create(
        tenant=acme.tenant, room_name="standup", identity="alice", until=datetime.now(UTC) + timedelta(minutes=5)
    )

    assert token_api.post("/v1/token/refresh", body(), key=globex.api_secret).status_code == 200
    assert token_api.post("/v1/token/refresh", body(), key=acme.api_secret).status_code == 403


def test_refresh_is_refused_for_a_removed_member(token_api, acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    acme.server().put("/v1/rooms/standup/members/alice", {"powerLevel": 0}, format="json")
    acme.server().delete("/v1/rooms/standup/members/alice")

    response = token_api.post("/v1/token/refresh", body(), key=acme.api_secret)

    assert response.status_code == 403
    assert response.json()["code"] == "member_removed"


def test_a_member_added_back_may_refresh_again(token_api, acme, livekit):
    acme.server().post("/v1/rooms", {"name": "standup"}, format="json")
    acme.server().put("/v1/rooms/standup/members/alice", {"powerLevel": 0}, format="json")
    acme.server().delete("/v1/rooms/standup/members/alice")
    acme.server().put("/v1/rooms/standup/members/alice", {"powerLevel": 0}, format="json")

    assert token_api.post("/v1/token/refresh", body(), key=acme.api_secret).status_code == 200


@pytest.mark.parametrize(
    ("when", "written"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.000Z"),
        (datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "2026-12-31T23:59:59.999Z"),  # cut, not rounded
    ],
)
def test_iso_ms_writes_utc_with_milliseconds(when, written):
    assert iso_ms(when) == written
