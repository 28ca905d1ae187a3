"""LiveKit's client signalling: the ``/rtc`` WebSocket, ``/rtc/validate``, and one session per connected client.

The wire behaviour follows livekit-server (docs/livekit-emulator.md, "The client protocol"): the dual-PeerConnection
v0 protocol on ``/rtc``; ``/rtc/v1`` answers 404 like a server from before v1, which makes both official SDKs fall
back to ``/rtc``. Real clients join the same rooms as control-API participants: the core tells the hub about every
join, leave, track and mute, and the hub turns them into signal messages and subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, cast

from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCRtpTransceiver
from livekit.protocol import models
from livekit.protocol import rtc as signal

from .auth import AuthLayerError, Grants, bearer_token, verify_token
from .core import SOURCE_NAMES, EmulatorError, Participant, Room, Track
from .ids import TRACK_PREFIX, new_id
from .rtc import PcmRecorder, TrackForwarder, apply_description, codec_preferences, new_peer_connection, parse_candidate

if TYPE_CHECKING:
    from .core import Emulator

log = logging.getLogger("livekit_emulator")

SERVER_VERSION = "1.9.0"
PROTOCOL_VERSION = 16
PING_INTERVAL_SECONDS = 5
PING_TIMEOUT_SECONDS = 15
PUBLISHER, SUBSCRIBER = signal.SignalTarget.PUBLISHER, signal.SignalTarget.SUBSCRIBER
RELIABLE, LOSSY = "_reliable", "_lossy"
DISCONNECT = signal.LeaveRequest.Action.DISCONNECT


class RtcRefusal(Exception):
    """A connect request livekit-server refuses before the upgrade: ``status`` with a plain-text ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.message, content_type="text/plain")


def grants_for(request: web.Request, keys: dict[str, str]) -> Grants:
    """Verify the request's token as livekit-server's ValidateConnectRequest does. Raises RtcRefusal."""
    try:
        token = bearer_token(request.headers.get("Authorization"), request.query.get("access_token"))
        grants = verify_token(token, keys) if token else None
    except AuthLayerError as exc:
        raise RtcRefusal(401, str(exc)) from exc
    if grants is None or not isinstance(grants.claims.get("video"), dict):
        raise RtcRefusal(401, "no permissions to access the room")
    if not grants.flag("roomJoin"):
        raise RtcRefusal(401, "permissions denied")
    if not grants.identity:
        raise RtcRefusal(400, "identity cannot be empty")
    if not grants.room:
        raise RtcRefusal(400, "no room name")
    return grants


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None or value == "" else value in ("1", "true")


class RtcHub:
    """All real-client sessions of one emulator, and the reactions to what the core reports."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.sessions: dict[str, SignalSession] = {}  # by participant sid
        self.forwarders: dict[str, tuple[str, TrackForwarder]] = {}  # track sid -> (publisher sid, forwarder)

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def validate(self, request: web.Request) -> web.Response:
        try:
            grants_for(request, self.emulator.config.keys)
        except RtcRefusal as exc:
            return exc.response()
        return web.Response(text="success", content_type="text/plain")

    async def not_found(self, request: web.Request) -> web.Response:
        # The reply of a livekit-server without the v1 signal path (Go's ServeMux): both SDKs then use /rtc.
        return web.Response(status=404, text="404 page not found\n", content_type="text/plain")

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=8 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=404)
        try:
            grants = grants_for(request, self.emulator.config.keys)
            room, participant = self.emulator.participant_join_with_grants(grants)
        except RtcRefusal as exc:
            return exc.response()
        except EmulatorError as exc:
            message = "room has exceeded its max participants" if exc.code == "room_full" else exc.message
            return web.Response(status=exc.status, text=message, content_type="text/plain")
        protocol = int(request.query.get("protocol") or 0) if (request.query.get("protocol") or "").isdigit() else 0
        session = SignalSession(
            self,
            room,
            participant,
            ws,
            auto_subscribe=_flag(request.query.get("auto_subscribe"), True),
            subscriber_primary=protocol > 2 and participant.info.permission.can_subscribe,
        )
        self.sessions[participant.info.sid] = session
        try:
            await ws.prepare(request)
        except (ConnectionError, RuntimeError):
            self.session_lost(session, models.DisconnectReason.SIGNAL_CLOSE)
            return ws
        await session.run()
        return ws

    # -- reactions to the core (synchronous: they queue messages and spawn work) ------------------------------
    def room_sessions(self, room: Room) -> list[SignalSession]:
        return [s for s in self.sessions.values() if s.room is room and not s.ended]

    def on_participant_changed(self, room: Room, participant: Participant) -> None:
        if participant.info.permission.hidden:
            update = None
        else:
            update = signal.SignalResponse(update=signal.ParticipantUpdate(participants=[participant.to_proto()]))
        for session in self.room_sessions(room):
            if session.participant is participant:
                # A participant hears about its own changes too (permission, metadata) - LiveKit sends them.
                session.send(
                    signal.SignalResponse(update=signal.ParticipantUpdate(participants=[participant.to_proto()]))
                )
            elif update is not None:
                session.send(update)

    def on_permission_changed(self, room: Room, participant: Participant) -> None:
        """UpdateParticipant changed a real client's permission: apply it to its tracks and subscriptions now.

        As livekit-server's SetPermission does: tracks the new grant does not allow are unpublished (the client hears
        TrackUnpublishedResponse), and a participant that may no longer subscribe loses its subscriptions.
        Control-API participants keep their tracks, as they always have."""
        session = self.sessions.get(participant.info.sid)
        if session is None:
            return
        permission = participant.info.permission
        for track in list(participant.tracks.values()):
            sources = permission.can_publish_sources
            if not permission.can_publish or (sources and track.info.source not in sources):
                unpublished = signal.TrackUnpublishedResponse(track_sid=track.info.sid)
                session.send(signal.SignalResponse(track_unpublished=unpublished))
                self.emulator.track_unpublish(room, participant, track)
        if not permission.can_subscribe:
            for track_sid in list(session.subscribed):
                session.unsubscribe(track_sid)
        elif session.auto_subscribe:
            for track_sid, (publisher_sid, _) in list(self.forwarders.items()):
                publisher = self.sessions.get(publisher_sid)
                if publisher is not None and publisher.room is room and publisher is not session:
                    session.subscribe(track_sid)

    def on_participant_left(self, room: Room, participant: Participant, reason: int) -> None:
        session = self.sessions.pop(participant.info.sid, None)
        if session is not None:
            session.end(reason)
        self.on_participant_changed(room, participant)

    def on_track_published(self, room: Room, participant: Participant, track: Track) -> None:
        self.on_participant_changed(room, participant)
        if track.info.sid not in self.forwarders:
            return  # a control-API track: announced, but it has no RTP to forward
        for session in self.room_sessions(room):
            if session.participant is not participant and session.auto_subscribe:
                session.subscribe(track.info.sid)

    def on_track_unpublished(self, room: Room, participant: Participant, track: Track) -> None:
        for session in self.room_sessions(room):
            session.unsubscribe(track.info.sid)
        entry = self.forwarders.pop(track.info.sid, None)
        publisher = self.sessions.get(participant.info.sid)
        if entry is not None and publisher is not None:
            publisher.forget_track(track.info.sid)
        self.on_participant_changed(room, participant)

    def on_track_muted(self, track: Track, *, by_server: bool) -> None:
        publisher = self.sessions.get(track.participant_sid)
        if publisher is not None and by_server:
            request = signal.MuteTrackRequest(sid=track.info.sid, muted=track.info.muted)
            publisher.send(signal.SignalResponse(mute=request))
        for room in self.emulator.all_rooms():
            participant = room.participants.get(track.participant_identity)
            if participant is not None and participant.info.sid == track.participant_sid:
                self.on_participant_changed(room, participant)

    def on_room_updated(self, room: Room) -> None:
        for session in self.room_sessions(room):
            session.send(signal.SignalResponse(room_update=signal.RoomUpdate(room=room.to_proto())))

    def deliver_data(self, room: Room, packet: models.DataPacket, *, sender_sid: str) -> None:
        """Send a DataPacket to everyone in the room but its sender (or only to its destination identities)."""
        destinations = set(packet.destination_identities) or set(packet.user.destination_identities)
        label = LOSSY if packet.kind == models.DataPacket.Kind.LOSSY else RELIABLE
        payload = packet.SerializeToString()
        for session in self.room_sessions(room):
            if session.participant.info.sid == sender_sid:
                continue
            if destinations and session.participant.identity not in destinations:
                continue
            session.send_data(label, payload)

    def session_lost(self, session: SignalSession, reason: int) -> None:
        """The session ended without the server ending it: the participant leaves with ``reason``."""
        room = self.emulator.room_get(session.room.name)
        if room is not None:
            self.emulator.participant_leave(room, session.participant, reason)
        self.sessions.pop(session.participant.info.sid, None)

    async def reset(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        self.forwarders.clear()
        for session in sessions:
            session.end(models.DisconnectReason.SERVER_SHUTDOWN)
        closing = [asyncio.ensure_future(s.closed.wait()) for s in sessions if s.started]
        if closing:
            # A client that never reads its socket must not hold a reset or a shutdown for long.
            await asyncio.wait(closing, timeout=5)
            for waiter in closing:
                waiter.cancel()


class SignalSession:
    """One client's signal connection and its two PeerConnections (publisher: the client offers; subscriber: we do)."""

    def __init__(
        self,
        hub: RtcHub,
        room: Room,
        participant: Participant,
        ws: web.WebSocketResponse,
        *,
        auto_subscribe: bool,
        subscriber_primary: bool,
    ) -> None:
        self.hub = hub
        self.emulator = hub.emulator
        self.room = room
        self.participant = participant
        self.sid = participant.info.sid
        self.ws = ws
        self.auto_subscribe = auto_subscribe
        self.subscriber_primary = subscriber_primary
        self.outbox: asyncio.Queue[signal.SignalResponse | None] = asyncio.Queue()
        self.publisher = new_peer_connection()
        self.subscriber = new_peer_connection()
        self.pending_tracks: dict[str, models.TrackInfo] = {}  # cid -> info, between AddTrackRequest and media
        self.published_mids: dict[str, str] = {}  # publisher transceiver mid -> track sid
        self.subscriptions: dict[str, RTCRtpTransceiver] = {}  # track sid -> subscriber transceiver
        self.subscribed: set[str] = set()  # what the participant is subscribed to, negotiated or not yet
        self.subscription_changes: list[tuple[str, bool]] = []  # for the next subscriber offer
        self.newly_subscribed: list[str] = []
        self.subscriber_channels: dict[str, RTCDataChannel] = {}
        self.remote_candidates: dict[int, list[Any]] = {PUBLISHER: [], SUBSCRIBER: []}
        self.publisher_lock = asyncio.Lock()
        self.offer_outstanding = False
        self.offer_again = False
        self.offer_id = 0
        self.ended = False
        self.leave_reason: int | None = None
        self.started = False
        self.closed = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- plumbing --------------------------------------------------------------------------------------------
    def send(self, message: signal.SignalResponse) -> None:
        if not self.ended:
            self.outbox.put_nowait(message)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("rtc session %s: task failed", self.participant.identity, exc_info=task.exception())

    async def _write(self) -> None:
        while True:
            message = await self.outbox.get()
            if message is None:
                break
            try:
                await self.ws.send_bytes(message.SerializeToString())
            except (ConnectionError, RuntimeError):
                break
        with contextlib.suppress(Exception):
            await self.ws.close()

    def end(self, reason: int) -> None:
        """Server-side end: tell the client why (LeaveRequest, DISCONNECT) unless it left by itself, then close."""
        if self.ended:
            return
        if self.leave_reason is None:
            leave = signal.LeaveRequest(can_reconnect=False, reason=cast(Any, reason), action=DISCONNECT)
            self.send(signal.SignalResponse(leave=leave))
        self.ended = True
        self.outbox.put_nowait(None)

    # -- the connection --------------------------------------------------------------------------------------
    def join_response(self) -> signal.JoinResponse:
        room = self.emulator.room_get(self.room.name) or self.room
        others = [
            p.to_proto()
            for p in room.participants.values()
            if p is not self.participant and not p.info.permission.hidden
        ]
        info = models.ServerInfo(
            edition=models.ServerInfo.Edition.Standard,
            version=SERVER_VERSION,
            protocol=PROTOCOL_VERSION,
            region="emulator",
            node_id="ND_emulator",
        )
        return signal.JoinResponse(
            room=room.to_proto(),
            participant=self.participant.to_proto(),
            other_participants=others,
            server_version=SERVER_VERSION,
            server_region="emulator",
            server_info=info,
            subscriber_primary=self.subscriber_primary,
            ping_interval=PING_INTERVAL_SECONDS,
            ping_timeout=PING_TIMEOUT_SECONDS,
            enabled_publish_codecs=[models.Codec(mime="audio/opus"), models.Codec(mime="video/VP8")],
            fast_publish=self.participant.info.permission.can_publish,
        )

    async def run(self) -> None:
        self.started = True
        writer = asyncio.get_running_loop().create_task(self._write())
        self.publisher.on("track", self._on_published_media)
        self.publisher.on("datachannel", self._on_client_channel)
        self.send(signal.SignalResponse(join=self.join_response()))
        if self.subscriber_primary:
            # LiveKit opens the subscriber's data channels and offers at once when the subscriber is primary.
            self.subscriber_channels[RELIABLE] = self.subscriber.createDataChannel(RELIABLE, ordered=True)
            self.subscriber_channels[LOSSY] = self.subscriber.createDataChannel(LOSSY, ordered=False, maxRetransmits=0)
            if self.auto_subscribe:
                for track_sid, (publisher_sid, _) in list(self.hub.forwarders.items()):
                    publisher = self.hub.sessions.get(publisher_sid)
                    if publisher is not None and publisher.room is self.room:
                        self.subscribe(track_sid, negotiate=False)
            self.spawn(self.negotiate_subscriber())
        try:
            async for message in self.ws:
                if message.type == WSMsgType.BINARY:
                    request = signal.SignalRequest()
                    try:
                        request.ParseFromString(message.data)
                    except Exception:
                        log.warning("rtc session %s: undecodable signal message", self.participant.identity)
                        continue
                    await self.handle(request)
                elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if not self.ended:
                # The socket went away without a LeaveRequest: the connection was lost.
                self.hub.session_lost(self, self.leave_reason or models.DisconnectReason.SIGNAL_CLOSE)
                self.end(models.DisconnectReason.SIGNAL_CLOSE)
            await writer
            for task in list(self.tasks):
                task.cancel()
            await self.publisher.close()
            await self.subscriber.close()
            self.closed.set()

    async def handle(self, request: signal.SignalRequest) -> None:
        kind = request.WhichOneof("message")
        if kind == "offer":
            await self.answer_publisher(request.offer)
        elif kind == "answer":
            await self.accept_subscriber_answer(request.answer)
        elif kind == "trickle":
            await self.add_candidate(request.trickle)
        elif kind == "add_track":
            self.add_track(request.add_track)
        elif kind == "mute":
            self.mute(request.mute)
        elif kind == "subscription":
            self.update_subscription(request.subscription)
        elif kind == "leave":
            self.leave_reason = request.leave.reason or models.DisconnectReason.CLIENT_INITIATED
            self.hub.session_lost(self, models.DisconnectReason.CLIENT_INITIATED)
            self.end(models.DisconnectReason.CLIENT_INITIATED)
        elif kind == "ping":
            self.send(signal.SignalResponse(pong=request.ping))
        elif kind == "ping_req":
            pong = signal.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000))
            self.send(signal.SignalResponse(pong_resp=pong))
        elif kind == "update_metadata":
            self.update_metadata(request.update_metadata)
        # track_setting, update_layers, subscription_permission, sync_state, simulate...: accepted and ignored.

    # -- negotiation -----------------------------------------------------------------------------------------
    async def answer_publisher(self, offer: signal.SessionDescription) -> None:
        async with self.publisher_lock:
            await apply_description(self.publisher, offer.sdp, "offer")
            await self._flush_candidates(PUBLISHER)
            answer = await self.publisher.createAnswer()
            await self.publisher.setLocalDescription(answer)
            description = self.publisher.localDescription
            self.send(
                signal.SignalResponse(answer=signal.SessionDescription(type="answer", sdp=description.sdp, id=offer.id))
            )
            self._unpublish_stopped_media()

    async def negotiate_subscriber(self) -> None:
        if self.offer_outstanding:
            self.offer_again = True
            return
        self.offer_outstanding = True
        self._apply_subscription_changes()
        offer = await self.subscriber.createOffer()
        await self.subscriber.setLocalDescription(offer)
        self.offer_id += 1
        description = self.subscriber.localDescription
        sdp = signal.SessionDescription(type="offer", sdp=description.sdp, id=self.offer_id)
        self.send(signal.SignalResponse(offer=sdp))

    async def accept_subscriber_answer(self, answer: signal.SessionDescription) -> None:
        if self.subscriber.signalingState != "have-local-offer":
            return
        await apply_description(self.subscriber, answer.sdp, "answer")
        await self._flush_candidates(SUBSCRIBER)
        self.offer_outstanding = False
        for track_sid in self.newly_subscribed:
            if track_sid in self.subscriptions:
                self.send(signal.SignalResponse(track_subscribed=signal.TrackSubscribed(track_sid=track_sid)))
        self.newly_subscribed.clear()
        if self.offer_again:
            self.offer_again = False
            await self.negotiate_subscriber()

    async def add_candidate(self, trickle: signal.TrickleRequest) -> None:
        candidate = parse_candidate(trickle.candidateInit)
        if candidate is None:
            return
        target = SUBSCRIBER if trickle.target == SUBSCRIBER else PUBLISHER
        pc = self.subscriber if target == SUBSCRIBER else self.publisher
        if pc.remoteDescription is None:
            self.remote_candidates[target].append(candidate)
            return
        await self._add_candidate(pc, candidate)

    async def _flush_candidates(self, target: int) -> None:
        pc = self.subscriber if target == SUBSCRIBER else self.publisher
        pending, self.remote_candidates[target] = self.remote_candidates[target], []
        for candidate in pending:
            await self._add_candidate(pc, candidate)

    @staticmethod
    async def _add_candidate(pc: RTCPeerConnection, candidate: Any) -> None:
        try:
            await pc.addIceCandidate(candidate)
        except Exception as exc:  # a candidate aiortc cannot use (mDNS it cannot resolve, unknown mid) is skipped
            log.debug("ignored ICE candidate %s: %s", candidate, exc)

    # -- publishing ------------------------------------------------------------------------------------------
    def add_track(self, request: signal.AddTrackRequest) -> None:
        permission = self.participant.info.permission
        allowed = permission.can_publish and (
            not permission.can_publish_sources or request.source in permission.can_publish_sources
        )
        if not allowed or request.type not in (models.TrackType.AUDIO, models.TrackType.VIDEO):
            reason = (
                signal.RequestResponse.Reason.NOT_ALLOWED
                if not allowed
                else signal.RequestResponse.Reason.UNSUPPORTED_TYPE
            )
            self.send(signal.SignalResponse(request_response=signal.RequestResponse(reason=reason, add_track=request)))
            return
        is_audio = request.type == models.TrackType.AUDIO
        info = models.TrackInfo(
            sid=new_id(TRACK_PREFIX),
            type=request.type,
            name=request.name,
            source=request.source,
            muted=request.muted,
            width=request.width,
            height=request.height,
            mime_type="audio/opus" if is_audio else "video/VP8",
            stereo=request.stereo,
            disable_dtx=request.disable_dtx,
            stream=request.stream,
        )
        self.pending_tracks[request.cid] = info
        self.send(signal.SignalResponse(track_published=signal.TrackPublishedResponse(cid=request.cid, track=info)))

    def _on_published_media(self, media: MediaStreamTrack) -> None:
        info = self.pending_tracks.pop(media.id, None)
        if info is None:  # some clients' msid track id is not their cid: take the oldest pending of that kind
            wanted = models.TrackType.AUDIO if media.kind == "audio" else models.TrackType.VIDEO
            cid = next((c for c, i in self.pending_tracks.items() if i.type == wanted), None)
            info = self.pending_tracks.pop(cid) if cid is not None else None
        room = self.emulator.room_get(self.room.name)
        if info is None or room is None or self.ended:
            log.warning("rtc session %s: media without an AddTrackRequest", self.participant.identity)
            return
        for transceiver in self.publisher.getTransceivers():
            if transceiver.receiver.track is media and transceiver.mid is not None:
                self.published_mids[transceiver.mid] = info.sid
        track_ref: list[Track] = []
        forwarder = TrackForwarder(media, is_muted=lambda: bool(track_ref and track_ref[0].info.muted))
        self.hub.forwarders[info.sid] = (self.sid, forwarder)
        source = models.TrackSource.Name(info.source).lower() if info.source in SOURCE_NAMES.values() else "unknown"
        try:
            track = self.emulator.track_publish(
                room, self.participant, kind=media.kind, source=source, info=info, check_permission=False
            )
        except EmulatorError:
            self.hub.forwarders.pop(info.sid, None)
            return
        track_ref.append(track)
        recorder = self._record(track, forwarder) if media.kind == "audio" else None
        self.spawn(self._forward(forwarder, track, recorder))

    def _record(self, track: Track, forwarder: TrackForwarder) -> PcmRecorder:
        """Keep the track's audio as PCM where egress reads it: recordings and live transcripts hear real speech."""
        track.pcm = self.emulator.work_dir / f"{track.info.sid}.pcm"
        track.audio_start = self.emulator.clock.now()

        def grown(seconds: float) -> None:
            track.audio_length = seconds

        clock = self.emulator.clock
        recorder = PcmRecorder(track.pcm, since_start=lambda: clock.now() - track.audio_start, on_length=grown)
        forwarder.on_packet.append(recorder.write)
        return recorder

    async def _forward(self, forwarder: TrackForwarder, track: Track, recorder: PcmRecorder | None) -> None:
        try:
            await forwarder.run()
        finally:
            if recorder is not None:
                recorder.close()
        # The publisher's media ended (its PeerConnection closed): the track is gone.
        room = self.emulator.room_get(self.room.name)
        if room is not None and self.participant.tracks.get(track.info.sid) is track:
            self.emulator.track_unpublish(room, self.participant, track)

    def _unpublish_stopped_media(self) -> None:
        room = self.emulator.room_get(self.room.name)
        if room is None:
            return
        for transceiver in self.publisher.getTransceivers():
            track_sid = self.published_mids.get(transceiver.mid or "")
            if track_sid and transceiver.currentDirection not in ("recvonly", "sendrecv"):
                self.published_mids.pop(transceiver.mid or "", None)
                track = self.participant.tracks.get(track_sid)
                if track is not None:
                    self.emulator.track_unpublish(room, self.participant, track)

    def forget_track(self, track_sid: str) -> None:
        for mid, sid in list(self.published_mids.items()):
            if sid == track_sid:
                del self.published_mids[mid]

    def mute(self, request: signal.MuteTrackRequest) -> None:
        track = self.participant.tracks.get(request.sid)
        if track is not None:
            self.emulator.track_set_muted(track, request.muted)

    def update_metadata(self, request: signal.UpdateParticipantMetadata) -> None:
        if not self.participant.info.permission.can_update_metadata:
            reason = signal.RequestResponse.Reason.NOT_ALLOWED
            self.send(
                signal.SignalResponse(
                    request_response=signal.RequestResponse(
                        request_id=request.request_id, reason=reason, update_metadata=request
                    )
                )
            )
            return
        info = self.participant.info
        if request.name:
            info.name = request.name
        if request.metadata:
            info.metadata = request.metadata
        for key, value in request.attributes.items():
            if value == "":
                info.attributes.pop(key, None)
            else:
                info.attributes[key] = value
        self.hub.on_participant_changed(self.room, self.participant)

    # -- subscribing -----------------------------------------------------------------------------------------
    def subscribe(self, track_sid: str, *, negotiate: bool = True) -> None:
        if track_sid not in self.hub.forwarders or track_sid in self.subscribed or self.ended:
            return
        if not self.participant.info.permission.can_subscribe:
            return
        self.subscribed.add(track_sid)
        self.subscription_changes.append((track_sid, True))
        if negotiate:
            self.spawn(self.negotiate_subscriber())

    def unsubscribe(self, track_sid: str) -> None:
        if track_sid not in self.subscribed or self.ended:
            return
        self.subscribed.discard(track_sid)
        entry = self.hub.forwarders.get(track_sid)
        if entry is not None:
            entry[1].remove_output(self.sid)  # stop feeding it now; the transceiver retires with the next offer
        self.subscription_changes.append((track_sid, False))
        self.spawn(self.negotiate_subscriber())

    def _apply_subscription_changes(self) -> None:
        """Add and retire subscriber transceivers, only between offers.

        aiortc never starts a transceiver that was added while its offer was outstanding (it misses the bundled
        transport when the answer arrives), so changes wait here for the next offer."""
        changes, self.subscription_changes = self.subscription_changes, []
        for track_sid, wanted in changes:
            entry = self.hub.forwarders.get(track_sid)
            if wanted != (track_sid in self.subscribed):
                continue  # changed its mind before the offer
            if wanted and track_sid not in self.subscriptions and entry is not None:
                publisher_sid, forwarder = entry
                output = forwarder.add_output(self.sid, track_sid)
                transceiver = self.subscriber.addTransceiver(output, direction="sendonly")
                transceiver.setCodecPreferences(codec_preferences(forwarder.kind))
                # msid "<participant sid>|<track sid> <track sid>": how both SDKs tell whose track this is.
                transceiver.sender._stream_id = f"{publisher_sid}|{track_sid}"
                self.subscriptions[track_sid] = transceiver
                self.newly_subscribed.append(track_sid)
            elif not wanted and track_sid in self.subscriptions:
                transceiver = self.subscriptions.pop(track_sid)
                transceiver.sender.replaceTrack(None)
                transceiver.direction = "inactive"

    def update_subscription(self, request: signal.UpdateSubscription) -> None:
        track_sids = list(request.track_sids)
        for participant_tracks in request.participant_tracks:
            track_sids.extend(participant_tracks.track_sids)
        for track_sid in track_sids:
            if request.subscribe:
                self.subscribe(track_sid)
            else:
                self.unsubscribe(track_sid)

    # -- data ------------------------------------------------------------------------------------------------
    def _on_client_channel(self, channel: RTCDataChannel) -> None:
        label = channel.label

        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            if isinstance(message, str) or label not in (RELIABLE, LOSSY):
                return
            self.relay_data(message)

    def relay_data(self, payload: bytes) -> None:
        if not self.participant.info.permission.can_publish_data:
            return
        packet = models.DataPacket()
        try:
            packet.ParseFromString(payload)
        except Exception:
            return
        # The server, not the client, says who sent a packet.
        packet.participant_identity = self.participant.identity
        packet.participant_sid = self.sid
        if packet.WhichOneof("value") == "user":
            packet.user.participant_identity = self.participant.identity
            packet.user.participant_sid = self.sid
        room = self.emulator.room_get(self.room.name)
        if room is not None:
            self.hub.deliver_data(room, packet, sender_sid=self.sid)

    def send_data(self, label: str, payload: bytes) -> None:
        channel = self.subscriber_channels.get(label)
        if channel is not None and channel.readyState == "open":
            channel.send(payload)
