"""Channels group names for WebSocket fan-out."""

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def user_group(tenant_id: str, user_pk: int) -> str:
    return f"u.{tenant_id}.{user_pk}"


def room_group(tenant_id: str, room_key: str) -> str:
    return f"r.{tenant_id}.{_UNSAFE.sub('_', room_key)}"[:99]


def tenant_group(tenant_id: str) -> str:
    """Every /v1/events connection of a tenant: used for events with many recipients, filtered per connection."""
    return f"t.{tenant_id}"
