"""Reads of rooms and memberships, scoped to a tenant."""

from __future__ import annotations

from rooms.models import Room, RoomMember
from scaiwave.models import Tenant, TenantUser


def room_get_open(*, tenant: Tenant, name: str) -> Room | None:
    return Room.objects.filter(tenant=tenant, name=name, closed_at__isnull=True).first()


def member_get(*, room: Room, user: TenantUser) -> RoomMember | None:
    """The user's current membership of the room, or None (never a member, or left)."""
    return RoomMember.objects.filter(room=room, user=user, left_at__isnull=True).first()


def member_user_ids(*, room: Room) -> list[int]:
    return list(RoomMember.objects.filter(room=room, left_at__isnull=True).values_list("user_id", flat=True))
