"""Event sinks: what happens to each dispatched event (see EVENT_SINKS)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from scaiwave.events.groups import room_group, user_group
from scaiwave.models import Event


def websocket_groups(event: Event) -> list[str]:
    groups = [user_group(event.tenant_id, int(pk)) for pk in event.user_ids]
    if event.room_key:
        groups.append(room_group(event.tenant_id, event.room_key))
    return groups


def websocket_sink(event: Event) -> None:
    """Push the frame to subscribers through the channel layer.

    With the in-memory layer (no Redis) a worker process cannot reach the web process's
    sockets; the web process's outbox relay delivers instead, so this sink does nothing.
    """
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return
    message = {"type": "event.frame", "frame": event.as_frame()}
    groups = websocket_groups(event)

    # One trip into the event loop for all recipients: an invite to a 200-member room is
    # 200 group sends, and a separate async_to_sync for each costs several times more.
    async def send_all() -> None:
        for group in groups:
            await layer.group_send(group, message)

    async_to_sync(send_all)()
