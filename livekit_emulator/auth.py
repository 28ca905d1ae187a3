"""Access-token verification the way livekit-server does it (livekit.md §2.3).

Two layers, as in the real server:
- the HTTP auth middleware, whose failures are *plain-text* 401s (``AuthLayerError``);
- the per-RPC grant checks, whose failures are Twirp ``unauthenticated`` JSON errors (raised by the services).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

LEEWAY_SECONDS = 60


class AuthLayerError(Exception):
    """A token the auth middleware refuses; rendered as a plain-text 401 with ``str(self)`` as body."""


@dataclass(frozen=True)
class Grants:
    """The verified claims of an access token. ``video`` keeps the raw lowerCamelCase JWT keys."""

    api_key: str
    identity: str
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def video(self) -> Mapping[str, Any]:
        video = self.claims.get("video")
        return video if isinstance(video, dict) else {}

    def flag(self, name: str) -> bool:
        return self.video.get(name) is True

    @property
    def room(self) -> str:
        room = self.video.get("room")
        return room if isinstance(room, str) else ""

    def can_create(self) -> bool:
        return self.flag("roomCreate")

    def can_list(self) -> bool:
        return self.flag("roomList")

    def can_record(self) -> bool:
        return self.flag("roomRecord")

    def can_ingress(self) -> bool:
        return self.flag("ingressAdmin")

    def can_admin(self, room: str) -> bool:
        # The server compares the grant's room with the request's room exactly (auth.go EnsureAdminPermission).
        return self.flag("roomAdmin") and self.room == room


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """Extract the token from the Authorization header or ``?access_token=``.

    Raises AuthLayerError when a header is present but is not a Bearer header (livekit.md §1.3).
    """
    if authorization:
        if not authorization.startswith("Bearer "):
            raise AuthLayerError("invalid authorization header. Must start with Bearer ")
        return authorization[len("Bearer ") :]
    if query_token:
        return query_token
    return None


def verify_token(token: str, keys: Mapping[str, str]) -> Grants:
    """Verify an HS256 LiveKit access token against ``keys`` (api key -> secret).

    ``exp`` is required, ``nbf``/``exp`` get 60 s of leeway, ``iss`` selects the secret and must match it.
    Raises AuthLayerError with the server's wording on any failure.
    """
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthLayerError("invalid authorization token") from exc
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in keys:
        raise AuthLayerError("invalid API key")
    try:
        claims = jwt.decode(
            token,
            keys[issuer],
            algorithms=["HS256"],
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthLayerError(f"invalid authorization token: {exc}") from exc
    subject = claims.get("sub")
    return Grants(api_key=issuer, identity=subject if isinstance(subject, str) else "", claims=claims)
