"""Event sinks: what happens to each dispatched event (see EVENT_SINKS)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from scaiwave.events.groups import room_group, tenant_group, user_group
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

    Each group send is a Redis round trip. An event for many users (an invite to a
    200-member room) goes once to the tenant's group carrying its recipients, where each web
    process's fan-out reader (scaiwave.events.fanout) hands it to the recipients' local
    connections: one round trip to send and one per process to receive, instead of 200 each.
    Events for a few users use their personal groups, so big tenants do not see every
    event on every socket.
    """
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return
    frame = event.as_frame()
    sends: list[tuple[str, dict[str, object]]] = []
    if len(event.user_ids) > settings.EVENTS_TENANT_FANOUT_THRESHOLD:
        recipients = [int(pk) for pk in event.user_ids]
        fanout_message: dict[str, object] = {
            "type": "fanout.frame",
            "tenant": event.tenant_id,
            "frame": frame,
            "users": recipients,
        }
        sends.append((tenant_group(event.tenant_id), fanout_message))
    else:
        message: dict[str, object] = {"type": "event.frame", "frame": frame}
        sends.extend((user_group(event.tenant_id, int(pk)), message) for pk in event.user_ids)
    if event.room_key:
        sends.append((room_group(event.tenant_id, event.room_key), {"type": "event.frame", "frame": frame}))
    if not sends:  # an event for webhooks only: no trip into an event loop for nothing
        return

    # One trip into the event loop for every send.
    async def send_all() -> None:
        for group, message in sends:
            await layer.group_send(group, message)

    async_to_sync(send_all)()
