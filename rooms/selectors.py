"""Reads of rooms, memberships, participants and bans, scoped to a tenant."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
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


@dataclass(frozen=True)
class RefreshObstacles:
    """What stops an identity from refreshing its token for a room (see rooms.services.token_refresh)."""

    ban_id: int | None  # a RoomBan whose `until` is still ahead
    member_removed: bool  # it was a member of the open room and was removed (left_at set)


# Every refresh asks both questions, so they are one round trip. Raw SQL because building and compiling
# the same query through the ORM costs about 1 ms of CPU here, several times the rest of the request.
# Table names come from the models; every value is a query parameter.
_REFRESH_OBSTACLES_SQL = f"""
SELECT
  (SELECT b.id FROM {RoomBan._meta.db_table} b
    WHERE b.tenant_id = %s AND b.room_name = %s AND b.identity = %s AND b.until > %s),
  EXISTS (SELECT 1 FROM {RoomMember._meta.db_table} m
    JOIN {Room._meta.db_table} r ON r.id = m.room_id
    JOIN {TenantUser._meta.db_table} u ON u.id = m.user_id
    WHERE r.tenant_id = %s AND r.name = %s AND r.closed_at IS NULL
      AND u.external_id = %s AND m.left_at IS NOT NULL)
"""  # noqa: S608


def refresh_obstacles(*, tenant: Tenant, room_name: str, identity: str) -> RefreshObstacles:
    """An active ban (unique per tenant, room name and identity) and a member removal, in one query."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())  # SQLite compares stored text
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_OBSTACLES_SQL, [tenant.pk, room_name, identity, now, tenant.pk, room_name, identity])
        ban_id, member_removed = cursor.fetchone()
    return RefreshObstacles(ban_id=ban_id, member_removed=bool(member_removed))


def room_subscribe_check(*, principal: Principal, room_id: str) -> str | None:
    """/v1/events: a current member of the open room gets its room key (its immutable id); nobody else."""
    if principal.user is None:
        return None
    room = room_get_open(tenant=principal.tenant, name=room_id)
    if room is None or member_get(room=room, user=principal.user) is None:
        return None
    return str(room.pk)
