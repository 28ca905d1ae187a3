"""LiveKit-shaped identifiers: a prefix plus 12 characters of base57 (livekit/protocol utils/guid)."""

from __future__ import annotations

import secrets

BASE57 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

ROOM_PREFIX = "RM_"
PARTICIPANT_PREFIX = "PA_"
TRACK_PREFIX = "TR_"
EGRESS_PREFIX = "EG_"
INGRESS_PREFIX = "IN_"
EVENT_PREFIX = "EV_"


def random_base57(length: int = 12) -> str:
    return "".join(secrets.choice(BASE57) for _ in range(length))


def new_id(prefix: str) -> str:
    """Return ``prefix`` followed by 12 random base57 characters, e.g. ``RM_4bqQzCgK6xPw``."""
    return prefix + random_base57(12)
