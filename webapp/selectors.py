"""Reads for the calls app: the rooms a user belongs to, with their members and any live call."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from calls.models import Call
from rooms.models import Room, RoomMember
from scaiwave.models import TenantUser


def rooms_for_user(*, user: TenantUser) -> list[dict[str, Any]]:
    """The open rooms `user` is a current member of, newest first: members, the user's power level and
    the id of the room's live call (ringing or active) if any. Three queries whatever the count."""
    rooms = (
        Room.objects.filter(
            tenant_id=user.tenant_id, closed_at__isnull=True, members__user=user, members__left_at__isnull=True
        )
        .prefetch_related(
            Prefetch(
                "members",
                queryset=RoomMember.objects.filter(left_at__isnull=True).select_related("user").order_by("joined_at"),
                to_attr="current_members",
            ),
            Prefetch("calls", queryset=Call.objects.filter(status__in=Call.LIVE_STATUSES), to_attr="live_calls"),
        )
        .order_by("-created_at", "-pk")
    )
    result = []
    for room in rooms:
        members = room.current_members
        mine = next(m for m in members if m.user_id == user.pk)
        live = room.live_calls
        result.append(
            {
                "id": room.name,
                "created_at": room.created_at.isoformat(),
                "my_power_level": mine.power_level,
                "members": [
                    {"user_id": m.user.external_id, "name": m.user.display_name, "power_level": m.power_level}
                    for m in members
                ],
                "live_call": {"call_id": live[0].pk, "type": live[0].type, "status": live[0].status} if live else None,
            }
        )
    return result
