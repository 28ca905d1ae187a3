"""Channels group names for WebSocket fan-out."""

import hashlib
import re

_SHORT_SAFE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def user_group(tenant_id: str, user_pk: int) -> str:
    return f"u.{tenant_id}.{user_pk}"


def room_group(tenant_id: str, room_key: str) -> str:
    """The group of a room's subscribers. `room_key` is the room's immutable id, never its name: a name
    can be reused after the room is deleted. A key that is not a short safe token is hashed rather than
    rewritten or cut, so two keys never share a group (Channels allows [A-Za-z0-9_.-], under 100 chars)."""
    if not _SHORT_SAFE.fullmatch(room_key):
        room_key = "h" + hashlib.sha256(room_key.encode()).hexdigest()[:40]
    return f"r.{tenant_id}.{room_key}"


def tenant_group(tenant_id: str) -> str:
    """Every /v1/events connection of a tenant: used for events with many recipients, filtered per connection."""
    return f"t.{tenant_id}"
