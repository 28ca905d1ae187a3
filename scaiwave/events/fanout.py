"""Per-process fan-out of tenant-wide frames to this process's /v1/events connections.

With Redis, an event for many users is sent once to the tenant's group (see sinks). If every
connection were a member, Redis would hold one copy per connection and this process would pop
them one round trip at a time, so the 200th member of a room would wait ~200 round trips. Instead
one channel per web process joins the group of each tenant it has connections for; a reader task
takes each frame once and hands it to the local connections of its recipients.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from scaiwave.events.groups import tenant_group

logger = logging.getLogger("scaiwave.events.fanout")


class FrameReceiver(Protocol):
    async def send_json(self, content: Any, close: bool = False) -> None: ...


class ProcessFanout:
    def __init__(self) -> None:
        self.connections: dict[tuple[str, int], set[FrameReceiver]] = {}
        self.tenants: dict[str, int] = {}
        self.channel: str | None = None
        self.reader: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def register(self, tenant_id: str, user_pk: int, connection: FrameReceiver) -> None:
        layer = get_channel_layer()
        assert layer is not None
        async with self.lock:
            if self.channel is None or self.reader is None or self.reader.done():
                # The default "specific" prefix: channels_redis pops one shared queue per prefix for all of
                # this process's receivers, and a reader on another prefix would starve behind them.
                self.channel = await layer.new_channel()
                self.reader = asyncio.get_running_loop().create_task(self._read(self.channel))
                for tenant in self.tenants:  # a restarted reader re-joins what it served
                    await layer.group_add(tenant_group(tenant), self.channel)
            self.connections.setdefault((tenant_id, user_pk), set()).add(connection)
            self.tenants[tenant_id] = self.tenants.get(tenant_id, 0) + 1
            if self.tenants[tenant_id] == 1:
                await layer.group_add(tenant_group(tenant_id), self.channel)

    async def unregister(self, tenant_id: str, user_pk: int, connection: FrameReceiver) -> None:
        layer = get_channel_layer()
        assert layer is not None
        async with self.lock:
            local = self.connections.get((tenant_id, user_pk))
            if local is None or connection not in local:
                return
            local.discard(connection)
            if not local:
                del self.connections[(tenant_id, user_pk)]
            self.tenants[tenant_id] -= 1
            if self.tenants[tenant_id] == 0:
                del self.tenants[tenant_id]
                if self.channel is not None:
                    await layer.group_discard(tenant_group(tenant_id), self.channel)

    async def _read(self, channel: str) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            message = await layer.receive(channel)
            try:
                await self._deliver(message)
            except Exception:  # one bad frame or socket must not stop the reader
                logger.exception("fan-out delivery failed")

    async def _deliver(self, message: dict[str, Any]) -> None:
        tenant_id = str(message.get("tenant"))
        frame = message.get("frame")
        for user_pk in message.get("users", []):
            for connection in list(self.connections.get((tenant_id, int(user_pk)), ())):
                await connection.send_json(frame)


# One fan-out per event loop, keyed by the loop itself (not id(): a new loop may reuse a closed one's id).
_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessFanout] = weakref.WeakKeyDictionary()


def process_fanout() -> ProcessFanout:
    """The fan-out of the running event loop (one per loop, so tests with their own loops stay apart)."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = ProcessFanout()
    return fanout
