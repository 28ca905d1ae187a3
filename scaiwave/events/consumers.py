"""WebSocket `/v1/events`: a user's events as JSON frames.

Authenticate with `Authorization: Bearer <JWT>` or `?access_token=<JWT>`. Frames:
`{"type": "...", "data": {...}, "id": "...", "ts": "..."}`. A client may also send
`{"action": "subscribe", "room_id": "<roomId>"}` to receive a room's events (for
example live `transcription.segment`) if it is a current member. The subscription is to that room
(by its id, not its name) and ends with an `unsubscribed` frame when the member is removed or the
room is closed. A frame that is not a JSON object gets an `error` frame; the socket stays open.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from rooms.selectors import room_subscribe_check
from scaiwave.api.auth import AuthError, Principal, authenticate_user_token
from scaiwave.events.fanout import process_fanout
from scaiwave.events.groups import room_group, user_group
from scaiwave.events.relay import ensure_relay_running, relay_needed


def _token_from_scope(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("access_token") or [""])[0]


@database_sync_to_async
def _authenticate(token: str) -> Principal | None:
    try:
        return authenticate_user_token(token)
    except AuthError:
        return None


@database_sync_to_async
def _room_key_if_allowed(principal: Principal, room_id: str) -> str | None:
    return room_subscribe_check(principal=principal, room_id=room_id)


class EventsConsumer(AsyncJsonWebsocketConsumer):
    principal: Principal
    groups_joined: list[str]
    # room key -> (its group, the roomId the client subscribed with)
    rooms: dict[str, tuple[str, str]]

    async def connect(self) -> None:
        token = _token_from_scope(self.scope)
        principal = await _authenticate(token) if token else None
        if principal is None or principal.user is None:
            await self.close(code=4401)  # before accept: the handshake is refused (HTTP 403)
            return
        self.principal = principal
        self.groups_joined = [user_group(principal.tenant.pk, principal.user.pk)]
        self.rooms = {}
        ensure_relay_running()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        if not relay_needed():
            await process_fanout().register(principal.tenant.pk, principal.user.pk, self)
        await self.send_json({"type": "connected", "data": {"user_id": principal.user.external_id}})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        principal = getattr(self, "principal", None)
        if principal is not None and principal.user is not None and not relay_needed():
            await process_fanout().unregister(principal.tenant.pk, principal.user.pk, self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Decode a client frame; one that is not a JSON object gets an `error` frame, and the socket stays."""
        try:
            content = json.loads(text_data) if text_data is not None else None
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser's stack
            content = None
        if not isinstance(content, dict):
            await self.send_json(
                {"type": "error", "data": {"code": "malformed_frame", "detail": "A frame must be a JSON object."}}
            )
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content.get("action") == "subscribe" and isinstance(content.get("room_id"), str):
            room_key = await _room_key_if_allowed(self.principal, content["room_id"])
            if room_key is None:
                await self.send_json({"type": "error", "data": {"code": "forbidden", "room_id": content["room_id"]}})
                return
            group = room_group(self.principal.tenant.pk, room_key)
            if room_key not in self.rooms:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
                self.rooms[room_key] = (group, content["room_id"])
            await self.send_json({"type": "subscribed", "data": {"room_id": content["room_id"]}})
        elif content.get("action") == "ping":
            await self.send_json({"type": "pong", "data": {}})

    async def event_frame(self, message: dict[str, Any]) -> None:
        await self.send_json(message["frame"])

    async def room_unsubscribe(self, message: dict[str, Any]) -> None:
        """Sent by events_room_unsubscribe: this member was removed, or the room closed."""
        subscription = self.rooms.pop(str(message.get("room_key")), None)
        if subscription is None:
            return
        group, room_id = subscription
        await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined.remove(group)
        await self.send_json({"type": "unsubscribed", "data": {"room_id": room_id, "reason": message.get("reason")}})
