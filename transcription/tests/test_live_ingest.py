"""The ingest WebSocket: who may stream, and hanging up on a session that stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from rooms.models import Room
from scaiwave.asgi import application
from transcription.live.tokens import ingest_token_make
from transcription.models import Transcription

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    yield
    # The consumer's database calls run in asgiref's executor thread, which keeps its connection open; close it
    # there, so the test database can be dropped at the end of the session.
    await database_sync_to_async(connections.close_all)()


@database_sync_to_async
def _session(acme, status: str = "active") -> Transcription:
    room = Room.objects.create(tenant=acme.tenant, name="standup", livekit_name="lk-standup")
    return Transcription.objects.create(tenant=acme.tenant, mode="live", room=room, status=status, health="ok")


def _ingest(transcription_id: str, *, ttl: int | None = None) -> WebsocketCommunicator:
    token = ingest_token_make(transcription_id=transcription_id, track_sid="TR_a", identity="alice", ttl=ttl)
    return WebsocketCommunicator(application, f"/v1/ingest/audio?token={token}")


async def test_a_track_of_an_active_session_may_stream(acme) -> None:
    session = await _session(acme)
    ingest = _ingest(session.pk)
    connected, _ = await ingest.connect()
    assert connected
    await ingest.send_to(bytes_data=b"\0\0" * 960)  # 20 ms of silence
    await ingest.send_to(text_data='{"muted": true}')
    await ingest.disconnect()


async def test_a_stopped_session_or_an_expired_token_is_refused(acme) -> None:
    stopped = _ingest((await _session(acme, status="stopped")).pk)
    connected, _ = await stopped.connect()
    assert not connected
    expired = _ingest("tr_whatever", ttl=-1)
    connected, _ = await expired.connect()
    assert not connected
    # Let each refused consumer finish: a consumer left waiting on the channel layer hangs the loop's teardown.
    for ingest in (stopped, expired):
        await ingest.disconnect()


async def test_the_ingest_hangs_up_once_the_session_stops(acme) -> None:
    session = await _session(acme)
    ingest = _ingest(session.pk)
    assert (await ingest.connect())[0]

    await database_sync_to_async(Transcription.objects.filter(pk=session.pk).update)(status="stopped")

    closed = await ingest.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    await ingest.disconnect()


async def test_the_stream_uses_the_model_chosen_when_the_session_started(acme, settings, monkeypatch) -> None:
    from transcription.live import consumers

    settings.STT_MODEL = "base"  # what the process would load without the session's choice
    opened: list[str] = []

    class RecordingStream(consumers.TrackStream):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            opened.append(self.model)

    monkeypatch.setattr(consumers, "TrackStream", RecordingStream)
    session = await _session(acme)
    session.model = "tiny.en"
    await database_sync_to_async(session.save)(update_fields=["model"])
    ingest = _ingest(session.pk)
    connected, _ = await ingest.connect()
    assert connected
    await ingest.disconnect()
    assert opened == ["tiny.en"]
