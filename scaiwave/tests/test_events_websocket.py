"""`/v1/events`: authentication and delivery of a user's events over a WebSocket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from scaiwave.asgi import application
from scaiwave.events.services import event_emit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _emit(creds, user_external_id: str, type_: str) -> str:
    user = creds.user_row(user_external_id)
    with transaction.atomic():
        event = event_emit(tenant=creds.tenant, type=type_, data={"call_id": "call-1"}, user_ids=[user.pk])
    return event.id


async def test_connection_without_a_token_is_refused():
    communicator = WebsocketCommunicator(application, "/v1/events")
    connected, _ = await communicator.connect()
    assert not connected


async def test_connection_with_a_bad_token_is_refused(acme):
    communicator = WebsocketCommunicator(application, "/v1/events?access_token=not-a-jwt")
    connected, _ = await communicator.connect()
    assert not connected


async def test_users_events_arrive_as_frames_via_header_auth(acme):
    token = acme.user_token("alice")
    communicator = WebsocketCommunicator(
        application, "/v1/events", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "connected"
    event_id = await sync_to_async(_emit)(acme, "alice", "swp.call.invite")
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == "swp.call.invite"
    assert frame["id"] == event_id
    assert frame["data"] == {"call_id": "call-1"}
    assert frame["ts"]
    await communicator.disconnect()


async def test_other_users_events_are_not_delivered(acme):
    token = acme.user_token("alice")
    communicator = WebsocketCommunicator(application, f"/v1/events?access_token={token}")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(_emit)(acme, "bob", "swp.call.invite")
    mine = await sync_to_async(_emit)(acme, "alice", "swp.call.ended")
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["id"] == mine
    await communicator.disconnect()


def _emit_to_many(creds, recipients: list[str], type_: str) -> str:
    users = [creds.user_row(sub) for sub in recipients]
    with transaction.atomic():
        event = event_emit(tenant=creds.tenant, type=type_, data={}, user_ids=[u.pk for u in users])
    return event.id


async def test_an_event_for_many_users_reaches_exactly_them_through_the_tenant_group(acme, settings):
    settings.EVENTS_TENANT_FANOUT_THRESHOLD = 3
    alice = WebsocketCommunicator(application, f"/v1/events?access_token={acme.user_token('alice')}")
    carol = WebsocketCommunicator(application, f"/v1/events?access_token={acme.user_token('carol')}")
    assert (await alice.connect())[0] and (await carol.connect())[0]
    await alice.receive_json_from(timeout=5)
    await carol.receive_json_from(timeout=5)
    recipients = ["alice", "bob", "dave", "erin", "frank"]  # more than the threshold; carol is not one
    invite = await sync_to_async(_emit_to_many)(acme, recipients, "swp.call.invite")
    frame = await alice.receive_json_from(timeout=5)
    assert frame["id"] == invite
    assert await carol.receive_nothing(timeout=0.5)
    await alice.disconnect()
    await carol.disconnect()


@pytest.mark.parametrize(
    "frame",
    [{"text_data": "not json"}, {"text_data": "[" * 100_000}, {"text_data": "[1, 2]"}, {"bytes_data": b"\x00\xff"}],
    ids=["not-json", "nested-100k", "not-an-object", "binary"],
)
async def test_a_frame_that_is_not_a_json_object_gets_an_error_frame_and_the_socket_stays(acme, frame, caplog):
    communicator = WebsocketCommunicator(application, f"/v1/events?access_token={acme.user_token('alice')}")
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=5)

    await communicator.send_to(**frame)
    error = await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"action": "ping"})
    pong = await communicator.receive_json_from(timeout=5)

    assert error["type"] == "error" and error["data"]["code"] == "malformed_frame"
    assert pong == {"type": "pong", "data": {}}
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]
    await communicator.disconnect()
