"""The gateway signs LiveKit tokens itself (rooms.livekit_gateway.signed_jwt); these tests hold it to
livekit-api's AccessToken.to_jwt() byte for byte and check the result with livekit-api's TokenVerifier."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from freezegun import freeze_time
from livekit import api as lk
from livekit.protocol.room import RoomConfiguration

from rooms import livekit_gateway as gateway

KEY = "APIsigning"
SECRET = "a-livekit-secret-that-is-long-enough-for-hs256-signing"
MOMENT = datetime(2026, 11, 21, 12, 30, 15, 999_000, tzinfo=UTC)


def _builder(role: str, *, name: str, metadata: str, attributes: dict[str, str] | None, hidden: bool,
             ttl: timedelta) -> lk.AccessToken:  # fmt: skip
    grants = gateway.grants_for_role(role, "room-ü 1")
    grants.hidden = True if hidden else None
    builder = lk.AccessToken(KEY, SECRET).with_identity("user-1").with_grants(grants).with_ttl(ttl)
    if name:
        builder = builder.with_name(name)
    if metadata:
        builder = builder.with_metadata(metadata)
    if attributes is not None:
        builder = builder.with_attributes(attributes)
    return builder


CASES = list(
    itertools.product(
        gateway.ROLES,
        ["", 'Zoë "Z" <script>'],
        ["", '{"seat": 3, "tags": ["a", "b"]}'],
        [None, {}, {"team": "blue", "empty": ""}],
        [False, True],
    )
)


@pytest.mark.parametrize(("role", "name", "metadata", "attributes", "hidden"), CASES)
def test_signed_jwt_is_byte_for_byte_what_to_jwt_gives(role, name, metadata, attributes, hidden):
    ttl = timedelta(seconds=3600)
    ours = gateway.signed_jwt(
        _builder(role, name=name, metadata=metadata, attributes=attributes, hidden=hidden, ttl=ttl), MOMENT
    )
    with freeze_time(MOMENT):
        theirs = _builder(role, name=name, metadata=metadata, attributes=attributes, hidden=hidden, ttl=ttl).to_jwt()
    assert ours == theirs


def test_every_claim_kind_livekit_api_renders_is_rendered_the_same():
    """Grants this product does not set today (SIP, sources lists, room config, kind, sha256) still sign the same,
    so a later use of them cannot drift from the SDK unnoticed."""
    builder = (
        lk.AccessToken(KEY, SECRET)
        .with_identity("agent-7")
        .with_kind("agent")
        .with_grants(lk.VideoGrants(room_join=True, room="r", can_publish_sources=["camera", "microphone"]))
        .with_sip_grants(lk.SIPGrants(admin=True, call=False))
        .with_sha256("abc123")
        .with_room_preset("preset")
        .with_room_config(RoomConfiguration(name="r", empty_timeout=30, max_participants=4))
        .with_ttl(timedelta(minutes=5))
    )
    ours = gateway.signed_jwt(builder, MOMENT)
    with freeze_time(MOMENT):
        assert ours == builder.to_jwt()


def test_signed_tokens_verify_with_livekit_api_and_carry_the_role_grants():
    token = gateway.signed_jwt(
        _builder("viewer", name="V", metadata="", attributes=None, hidden=False, ttl=timedelta(minutes=10)),
        datetime.now(UTC),
    )
    claims = lk.TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "user-1" and claims.name == "V"
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join, claims.video.can_publish) == ("room-ü 1", True, False)
    with pytest.raises(Exception, match="Signature"):
        lk.TokenVerifier(KEY, SECRET + "x").verify(token)


def test_a_join_grant_without_identity_or_room_is_refused_as_to_jwt_refuses_it():
    builder = lk.AccessToken(KEY, SECRET).with_grants(lk.VideoGrants(room_join=True, room="r"))
    with pytest.raises(ValueError, match="identity and room"):
        gateway.signed_jwt(builder, MOMENT)
    builder = lk.AccessToken(KEY, SECRET).with_identity("u").with_grants(lk.VideoGrants(room_join=True))
    with pytest.raises(ValueError, match="identity and room"):
        gateway.signed_jwt(builder, MOMENT)


def test_mint_token_expiry_matches_the_exp_claim(settings):
    settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = KEY, SECRET
    with freeze_time(MOMENT):
        minted = gateway.mint_token(room_name="r", identity="u", ttl_seconds=120)
    claims = jwt.decode(minted.token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert minted.expires_at == MOMENT.replace(microsecond=0) + timedelta(seconds=120)
    assert claims["exp"] == int(minted.expires_at.timestamp())
    assert claims["nbf"] == int(MOMENT.timestamp())
