"""The calls app's own server side: demo sign-in and demo rooms, embedded mode only.

In embedded mode the page plays both parts a host application normally plays: it mints its users'
tokens ("continue as <name>") and creates rooms as the demo tenant's server. Both go through the same
services the API uses (rooms.services), so the rules stay in one place. With SCAIWAVE_MODE=production
every function here refuses: a production page is handed a token by the host application (docs/app.md).
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.db import transaction

from rooms.models import Room, RoomMember
from rooms.selectors import member_get, room_get_open
from rooms.services import member_set, room_create
from scaiwave.api.auth import Principal, user_get_or_create
from scaiwave.api.errors import ProblemError
from scaiwave.models import Tenant, TenantUser
from scaiwave.services import tenant_create

DEMO_TENANT = "demo"  # the tenant `manage.py bootstrap` creates
DEMO_TOKEN_TTL = 12 * 3600
NAME_MAX = 80


@dataclass(frozen=True)
class DemoSession:
    token: str
    user: TenantUser
    expires_at: datetime


def demo_available() -> bool:
    return settings.SCAIWAVE_MODE == "embedded"


def _require_demo() -> None:
    if not demo_available():
        raise ProblemError(
            403,
            "demo_disabled",
            "Signing in by name is only available on an embedded (demo) server. "
            "Open this page from your application, which signs you in.",
        )


def demo_tenant_get_or_create() -> tuple[Tenant, str]:
    """The demo tenant and its API secret, created on first use like `manage.py bootstrap` does."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(name=DEMO_TENANT).first()
        if tenant is None:
            return tenant_create(name=DEMO_TENANT)
        return tenant, tenant.api_secret


def _user_id_for(name: str) -> str:
    """A stable, readable user id for a display name: "Alice Smith" -> "alice-smith"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40]
    # A name with no Latin letters still gets an id that is the same every time.
    return slug or "user-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ProblemError(400, "validation_failed", "Please enter your name.", errors={"name": ["Required."]})
    if len(cleaned) > NAME_MAX or any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise ProblemError(
            400, "validation_failed", f"Use up to {NAME_MAX} printable characters.", errors={"name": ["Too long."]}
        )
    return cleaned


def demo_sign_in(*, name: str) -> DemoSession:
    """A user token of the demo tenant for the person called `name` (created on first use).

    Raises 403 `demo_disabled` in production mode and 400 `validation_failed` for an empty or overlong name.
    """
    _require_demo()
    display_name = _clean_name(name)
    tenant, secret = demo_tenant_get_or_create()
    user = user_get_or_create(tenant=tenant, external_id=_user_id_for(display_name), display_name=display_name)
    now = int(time.time())
    claims = {"iss": tenant.api_key_id, "sub": user.external_id, "name": display_name, "iat": now}
    claims["exp"] = now + DEMO_TOKEN_TTL
    token = jwt.encode(claims, secret, algorithm="HS256")
    return DemoSession(token=token, user=user, expires_at=datetime.fromtimestamp(now + DEMO_TOKEN_TTL, tz=UTC))


def _require_demo_user(principal: Principal) -> TenantUser:
    _require_demo()
    if principal.user is None or principal.tenant.name != DEMO_TENANT:
        raise ProblemError(403, "forbidden", "Only people signed in to the demo can do this.")
    return principal.user


def demo_room_create(*, principal: Principal, name: str, people: list[str]) -> Room:
    """Create a room as the demo tenant's server, with the caller as its owner (power 100) and `people`
    (display names) as members. Raises 403 `demo_disabled`/`forbidden`, 409 `room_exists`, LiveKit's 502/503."""
    owner = _require_demo_user(principal)
    names = [_clean_name(person) for person in people if person.strip()]
    room = room_create(tenant=principal.tenant, name=name)
    member_set(room=room, external_id=owner.external_id, power_level=100, name=owner.display_name)
    for person in names:
        person_id = _user_id_for(person)
        if person_id != owner.external_id:
            member_set(room=room, external_id=person_id, power_level=0, name=person)
    return room


def demo_member_add(*, principal: Principal, room_name: str, name: str) -> RoomMember:
    """Add the person called `name` to a room the caller administers (power 50+), as the demo tenant's
    server. Raises 403 `demo_disabled`/`forbidden`, 404 `room_not_found`."""
    caller = _require_demo_user(principal)
    room = room_get_open(tenant=principal.tenant, name=room_name)
    membership = member_get(room=room, user=caller) if room is not None else None
    if room is None or membership is None:
        raise ProblemError(404, "room_not_found", f"Room {room_name!r} not found.")
    if membership.power_level < RoomMember.ADMIN_POWER:
        raise ProblemError(403, "forbidden", "Only the room's owner and admins can add people.")
    display_name = _clean_name(name)
    member, _ = member_set(room=room, external_id=_user_id_for(display_name), power_level=0, name=display_name)
    return member
