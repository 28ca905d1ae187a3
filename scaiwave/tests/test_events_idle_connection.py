"""An idle `/v1/events` connection keeps receiving: the channel layer's blocking read outlasts its idle wait.

channels_redis waits up to 5 s per BZPOPMIN and redis-py 8 gives every socket a 5 s read time-out by default;
with both at 5 s an idle connection's consumer died with redis' TimeoutError after about 5 s, and a ring sent
after that was lost (the calls app saw it first).
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction

from scaiwave.asgi import application
from scaiwave.events.services import event_emit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer is what is under test"),
]


def _emit(creds, user_external_id: str) -> str:
    user = creds.user_row(user_external_id)
    with transaction.atomic():
        event = event_emit(tenant=creds.tenant, type="swp.call.invite", data={"call_id": "call-1"}, user_ids=[user.pk])
    return event.id


async def test_an_event_reaches_a_connection_that_was_idle_longer_than_the_layers_wait(acme):
    communicator = WebsocketCommunicator(application, f"/v1/events?access_token={acme.user_token('bob')}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "connected"
    await asyncio.sleep(11)  # two of channels_redis' 5 s waits
    event_id = await sync_to_async(_emit)(acme, "bob")
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["id"] == event_id
    await communicator.disconnect()
