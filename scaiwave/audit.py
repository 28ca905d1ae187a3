"""Destructive actions leave a trace: an outbox event and a log line (logger `scaiwave.audit`), both naming who
did it. The event is written in the caller's transaction, so it exists exactly when the delete committed.

Actors: `server` (the tenant's API key), `user:<the user's id in the host app>` (a user token),
`admin:<username>` (the Django admin), `system` (retention and other sweeps).
"""

from __future__ import annotations

import logging
from typing import Any

from scaiwave.api.auth import Principal
from scaiwave.events.services import event_emit
from scaiwave.models import Tenant, TenantUser

logger = logging.getLogger("scaiwave.audit")

SYSTEM = "system"


def actor_of(principal: Principal) -> str:
    return "server" if principal.user is None else user_actor(principal.user)


def user_actor(user: TenantUser) -> str:
    return f"user:{user.external_id}"


def admin_actor(user: Any) -> str:
    """An operator in the Django admin (request.user)."""
    return f"admin:{user.get_username()}"


def deletion_logged(*, tenant: Tenant, type: str, object_id: str, actor: str, **details: Any) -> None:
    """The log line of a deletion (for deletes whose event is emitted by their own service)."""
    logger.info(
        "deleted",
        extra={"event": type, "tenant": str(tenant.pk), "object_id": object_id, "actor": actor, "details": details},
    )


def deletion_record(
    *, tenant: Tenant, type: str, object_id: str, actor: str, room_key: str = "", **details: Any
) -> None:
    """Emit `type` (`recording_deleted`, `room_deleted`, ...) with `{id, actor, **details}` and log it. Call it
    inside the transaction that deletes."""
    event_emit(tenant=tenant, type=type, data={"id": object_id, "actor": actor, **details}, room_key=room_key)
    deletion_logged(tenant=tenant, type=type, object_id=object_id, actor=actor, **details)
