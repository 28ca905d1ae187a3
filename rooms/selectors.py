"""Reads of rooms, memberships, participants and bans, scoped to a tenant."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from rooms.models import Room, RoomBan, RoomMember, RoomParticipant
from scaiwave.api.auth import Principal
from scaiwave.models import Tenant, TenantUser


def room_get_open(*, tenant: Tenant, name: str) -> Room | None:
    return Room.objects.filter(tenant=tenant, name=name, closed_at__isnull=True).first()


def room_list_open(*, tenant: Tenant) -> QuerySet[Room]:
    return Room.objects.filter(tenant=tenant, closed_at__isnull=True)


def member_get(*, room: Room, user: TenantUser) -> RoomMember | None:
    """The user's current membership of the room, or None (never a member, or left)."""
    return RoomMember.objects.filter(room=room, user=user, left_at__isnull=True).first()


def member_list(*, room: Room) -> QuerySet[RoomMember]:
    return RoomMember.objects.filter(room=room, left_at__isnull=True).select_related("user")


def member_user_ids(*, room: Room) -> list[int]:
    return list(RoomMember.objects.filter(room=room, left_at__isnull=True).values_list("user_id", flat=True))


def participants_connected(*, room: Room) -> QuerySet[RoomParticipant]:
    """The mirror's view of who is connected (LiveKit webhooks + reconciliation)."""
    return RoomParticipant.objects.filter(room=room, state=RoomParticipant.State.JOINED)


def ban_active(*, tenant: Tenant, room_name: str, identity: str) -> RoomBan | None:
    return RoomBan.objects.filter(
        tenant=tenant, room_name=room_name, identity=identity, until__gt=timezone.now()
    ).first()


def member_was_removed(*, tenant: Tenant, room_name: str, identity: str) -> bool:
    """True if the identity was a member of the open room and was removed (left_at set)."""
    return RoomMember.objects.filter(
        room__tenant=tenant,
        room__name=room_name,
        room__closed_at__isnull=True,
        user__external_id=identity,
        left_at__isnull=False,
    ).exists()


def room_subscribe_check(*, principal: Principal, room_id: str) -> str | None:
    """EVENTS_ROOM_SUBSCRIBE_CHECK: a current member of the open room gets its room key; nobody else."""
    if principal.user is None:
        return None
    room = room_get_open(tenant=principal.tenant, name=room_id)
    if room is None or member_get(room=room, user=principal.user) is None:
        return None
    return room.name
