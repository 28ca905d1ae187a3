"""Outbox relay for deployments without Redis.

The web process tails the Event table and hands new frames to its own in-memory
channel layer, so events written by the worker reach this process's WebSockets.
With Redis the websocket sink publishes directly and the relay is not started.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db.models import Max

from scaiwave.events.sinks import websocket_groups
from scaiwave.models import Event

logger = logging.getLogger("scaiwave.events.relay")
_relay_task: asyncio.Task[None] | None = None


def relay_needed() -> bool:
    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def ensure_relay_running() -> None:
    global _relay_task
    if not relay_needed():
        return
    if _relay_task is None or _relay_task.done():
        _relay_task = asyncio.get_running_loop().create_task(_relay_loop())


@database_sync_to_async
def _latest_seq() -> int:
    return Event.objects.aggregate(m=Max("seq"))["m"] or 0


@database_sync_to_async
def _events_after(seq: int) -> list[Event]:
    return list(Event.objects.filter(seq__gt=seq).order_by("seq")[:500])


async def _relay_loop() -> None:
    layer = get_channel_layer()
    assert layer is not None
    cursor = await _latest_seq()
    while True:
        try:
            events = await _events_after(cursor)
            for event in events:
                message = {"type": "event.frame", "frame": event.as_frame()}
                for group in websocket_groups(event):
                    await layer.group_send(group, message)
                cursor = event.seq
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("outbox relay iteration failed")
        await asyncio.sleep(settings.OUTBOX_RELAY_INTERVAL)
