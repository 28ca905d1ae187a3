"""WebSocket `/v1/ingest/audio?token=…`: one LiveKit track egress streaming one track's audio.

LiveKit's track egress sends binary frames of PCM (s16le, 48 kHz, mono) and text frames `{"muted": true|false}`.
The signed per-track token (tokens.py) names the session, track and participant; a connection without a valid
token, or for a session that is not active, is refused before the handshake completes (HTTP 403).

Frames are cut into utterances in the event loop (cheap); each utterance is transcribed by the process's live
recognizer thread (recognizer.py), whose callbacks store final segments and push partial ones to the room. A mute
or the end of the stream ends the utterance in progress; so does a gap in the stream (no frames for
IDLE_FLUSH_SECONDS: LiveKit sends nothing while a track is silent-muted or stalls).
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from scaiwave.events.groups import room_group
from transcription.engine import UnsupportedLanguage, whisper_language_for
from transcription.live import services
from transcription.live.recognizer import Dropped, Heard, TrackStream
from transcription.live.tokens import IngestClaims, InvalidIngestToken, ingest_token_verify
from transcription.models import Transcription

logger = logging.getLogger(__name__)

IDLE_FLUSH_SECONDS = 0.4
SESSION_CHECK_SECONDS = 2.0


class AudioIngestConsumer(AsyncWebsocketConsumer):
    claims: IngestClaims
    session: Transcription
    _loop: asyncio.AbstractEventLoop
    stream: TrackStream | None = None
    _watchdog: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = (query.get("token") or [""])[0]
        try:
            self.claims = ingest_token_verify(token)
        except InvalidIngestToken as exc:
            logger.warning("ingest connection refused: %s", exc)
            await self.close(code=4403)
            return
        session = await database_sync_to_async(services.live_session_for_ingest)(
            transcription_id=self.claims.transcription_id, track_sid=self.claims.track_sid
        )
        if session is None:
            await self.close(code=4404)
            return
        self.session = session
        try:
            language = whisper_language_for(session.language)
        except UnsupportedLanguage:
            language = None
        self.stream = TrackStream(
            track_sid=self.claims.track_sid,
            language=language,
            offset=services.session_clock(session),
            on_heard=self._on_heard,
            on_drop=self._on_drop,
            partial_results=bool(session.options.get("partialResults")),
            model=session.model or None,  # chosen when the session started (live_model_name)
        )
        self._loop = asyncio.get_running_loop()
        self._last_frame = self._loop.time()
        await self.accept()
        self._watchdog = asyncio.create_task(self._flush_when_idle())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.stream is None:
            return
        if bytes_data:
            self._last_frame = self._loop.time()
            self.stream.feed(bytes_data)
        elif text_data:
            try:
                message = json.loads(text_data)
            except ValueError:
                return
            if isinstance(message, dict) and message.get("muted") is True:
                self.stream.flush()

    async def disconnect(self, code: int) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.stream is not None:
            self.stream.flush()

    async def _flush_when_idle(self) -> None:
        """End the utterance in progress when frames stop coming; hang up once the session is no longer active
        (stop asks LiveKit to end the egress too; this covers an egress LiveKit failed to stop)."""
        checked = self._loop.time()
        while True:
            await asyncio.sleep(IDLE_FLUSH_SECONDS / 2)
            if self.stream is not None and self._loop.time() - self._last_frame >= IDLE_FLUSH_SECONDS:
                self.stream.flush()
            if self._loop.time() - checked >= SESSION_CHECK_SECONDS:
                checked = self._loop.time()
                active = await database_sync_to_async(services.live_session_for_ingest)(
                    transcription_id=self.claims.transcription_id, track_sid=self.claims.track_sid
                )
                if active is None:
                    self.stream = None  # nothing more is transcribed for a stopped session
                    await self.close()
                    return

    # Called in the recognizer thread.
    def _on_heard(self, heard: Heard) -> None:
        if heard.final:
            services.live_segment_store(
                transcription_id=self.claims.transcription_id,
                track_sid=self.claims.track_sid,
                identity=self.claims.identity,
                heard=heard,
            )
            return
        session = Transcription.objects.select_related("room").filter(pk=self.claims.transcription_id).first()
        if session is None or session.status != Transcription.Status.ACTIVE or session.room is None:
            return
        frame = services.live_partial_frame(
            session=session, track_sid=self.claims.track_sid, identity=self.claims.identity, heard=heard
        )
        layer = get_channel_layer()
        if frame is not None and layer is not None:
            group = room_group(session.tenant_id, str(session.room_id))
            # Sent from this process's event loop, where the in-memory layer's queues live too.
            asyncio.run_coroutine_threadsafe(
                layer.group_send(group, {"type": "event.frame", "frame": frame}), self._loop
            )

    def _on_drop(self, dropped: Dropped) -> None:
        # Called in the event loop (the decision is taken when the utterance is handed over): write in a thread.
        self._loop.run_in_executor(
            None,
            lambda: services.live_dropped(
                transcription_id=self.claims.transcription_id,
                track_sid=self.claims.track_sid,
                identity=self.claims.identity,
                dropped=dropped,
            ),
        )
