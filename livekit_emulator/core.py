"""The emulated SFU's state: rooms, participants and tracks, their timers, and the webhooks they fire.

Everything runs on one asyncio loop; state is mutated only from synchronous code between awaits, so no locks are
needed. Egress and ingress live in their own modules and are told about room, participant and track changes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from .config import EmulatorConfig
from .ids import PARTICIPANT_PREFIX, ROOM_PREFIX, TRACK_PREFIX, new_id
from .webhooks import WebhookNotifier

if TYPE_CHECKING:
    from .auth import Grants
    from .egress import EgressManager
    from .ingress import IngressManager
    from .signal import RtcHub

log = logging.getLogger("livekit_emulator")

DEFAULT_CODECS = (
    "audio/PCMU",
    "audio/PCMA",
    "audio/opus",
    "audio/red",
    "video/VP8",
    "video/H264",
    "video/VP9",
    "video/AV1",
    "video/H265",
    "video/rtx",
)
# Participants that do not keep a room alive and are not counted in num_participants.
DEPENDENT_KINDS = (models.ParticipantInfo.Kind.EGRESS, models.ParticipantInfo.Kind.AGENT)

KINDS = {
    "standard": models.ParticipantInfo.Kind.STANDARD,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "sip": models.ParticipantInfo.Kind.SIP,
    "agent": models.ParticipantInfo.Kind.AGENT,
}

SOURCE_NAMES = {
    "unknown": models.TrackSource.UNKNOWN,
    "camera": models.TrackSource.CAMERA,
    "microphone": models.TrackSource.MICROPHONE,
    "screen_share": models.TrackSource.SCREEN_SHARE,
    "screen_share_audio": models.TrackSource.SCREEN_SHARE_AUDIO,
}


class EmulatorError(Exception):
    """A control-API failure: ``status`` and ``code`` are returned as JSON ``{"error", "code"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class MediaClock:
    """Simulated media time in seconds: wall time multiplied by the speed factor."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._wall0 = time.monotonic()
        self._media0 = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._media0 + (time.monotonic() - self._wall0) * self._speed

    def set_speed(self, speed: float) -> None:
        self._media0 = self.now()
        self._wall0 = time.monotonic()
        self._speed = speed

    def wall(self, media_seconds: float) -> float:
        """Wall-clock seconds that ``media_seconds`` of media take at the current speed."""
        return media_seconds / self._speed


@dataclass
class Track:
    info: models.TrackInfo
    participant_identity: str
    participant_sid: str
    published_at: float
    pcm: Path | None = None
    audio_start: float = 0.0
    audio_length: float = 0.0
    unpublished_at: float | None = None
    mute_intervals: list[list[float]] = field(default_factory=list)
    listeners: list[asyncio.Queue[dict[str, Any]]] = field(default_factory=list)
    end_timer: asyncio.TimerHandle | None = None

    @property
    def is_audio(self) -> bool:
        return self.info.type == models.TrackType.AUDIO

    def audio_end(self) -> float:
        end = self.audio_start + self.audio_length
        return min(end, self.unpublished_at) if self.unpublished_at is not None else end

    def muted_between(self, start: float, end: float) -> list[tuple[float, float]]:
        """Mute intervals clipped to [start, end], relative to ``start``."""
        spans = []
        for interval in self.mute_intervals:
            mute_start = interval[0]
            mute_end = interval[1] if len(interval) > 1 else end
            lo, hi = max(mute_start, start), min(mute_end, end)
            if hi > lo:
                spans.append((lo - start, hi - start))
        return spans

    def notify(self, message: dict[str, Any]) -> None:
        for queue in self.listeners:
            queue.put_nowait(message)


@dataclass
class Participant:
    info: models.ParticipantInfo
    tracks: dict[str, Track] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return self.info.identity

    @property
    def is_dependent(self) -> bool:
        return self.info.kind in DEPENDENT_KINDS

    def to_proto(self) -> models.ParticipantInfo:
        info = models.ParticipantInfo()
        info.CopyFrom(self.info)
        info.is_publisher = bool(self.tracks)
        for track in self.tracks.values():
            info.tracks.append(track.info)
        return info


@dataclass
class Room:
    info: models.Room
    participants: dict[str, Participant] = field(default_factory=dict)
    track_history: list[Track] = field(default_factory=list)
    close_timer: asyncio.TimerHandle | None = None
    data_packets: list[dict[str, Any]] = field(default_factory=list)
    ever_joined: bool = False
    closed: bool = False

    @property
    def name(self) -> str:
        return self.info.name

    def counted(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.is_dependent]

    def to_proto(self) -> models.Room:
        room = models.Room()
        room.CopyFrom(self.info)
        room.num_participants = len(self.counted())
        room.num_publishers = sum(1 for p in self.participants.values() if p.tracks)
        room.active_recording = any(p.info.permission.recorder for p in self.participants.values())
        return room


def permission_from_grants(video: dict[str, Any]) -> models.ParticipantPermission:
    """The ParticipantPermission the server derives from a token's video grant (defaults per livekit.md §2.2)."""
    can_publish = video.get("canPublish", True) is not False
    permission = models.ParticipantPermission(
        can_subscribe=video.get("canSubscribe", True) is not False,
        can_publish=can_publish,
        can_publish_data=bool(video.get("canPublishData", can_publish)),
        hidden=video.get("hidden") is True,
        recorder=video.get("recorder") is True,
        can_update_metadata=video.get("canUpdateOwnMetadata") is True,
        agent=video.get("agent") is True,
        can_subscribe_metrics=video.get("canSubscribeMetrics") is True,
        can_manage_agent_session=video.get("canManageAgentSession") is True,
    )
    for source in video.get("canPublishSources") or []:
        if isinstance(source, str) and source.lower() in SOURCE_NAMES:
            permission.can_publish_sources.append(SOURCE_NAMES[source.lower()])
    return permission


class Emulator:
    """Holds all emulated state for one server instance."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = MediaClock(config.speed)
        self.webhooks = WebhookNotifier(config)
        self.rooms: dict[str, Room] = {}
        self._own_work_dir = config.work_dir is None
        self.work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="livekit-emulator-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.tasks: set[asyncio.Task[Any]] = set()
        # Set by server.build_app; typed here to keep the import graph one-way.
        self.egress: EgressManager
        self.ingress: IngressManager
        self.rtc: RtcHub

    # -- helpers ---------------------------------------------------------------------------------------------
    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        """Run a background coroutine, keeping a reference so it is not garbage collected mid-flight."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def emit(self, event: str, **fields: Any) -> None:
        message = WebhookEvent(event=event)
        extra = fields.pop("extra_targets", None)
        for name, value in fields.items():
            if value is not None:
                getattr(message, name).CopyFrom(value)
        self.webhooks.emit(message, extra)

    # -- rooms -----------------------------------------------------------------------------------------------
    def room_get(self, name: str) -> Room | None:
        room = self.rooms.get(name)
        return room if room is not None and not room.closed else None

    def room_require(self, name: str) -> Room:
        room = self.room_get(name)
        if room is None:
            raise EmulatorError(404, "not_found", f"room {name!r} does not exist")
        return room

    def room_create(
        self,
        name: str,
        *,
        empty_timeout: int = 0,
        departure_timeout: int = 0,
        max_participants: int = 0,
        metadata: str = "",
    ) -> tuple[Room, bool]:
        """Create the room, or update the non-zero fields of an existing one (same sid). Returns (room, created)."""
        room = self.room_get(name)
        if room is not None:
            if empty_timeout:
                room.info.empty_timeout = empty_timeout
            if departure_timeout:
                room.info.departure_timeout = departure_timeout
            if max_participants:
                room.info.max_participants = max_participants
            if metadata:
                room.info.metadata = metadata
            return room, False
        now = time.time()
        info = models.Room(
            sid=new_id(ROOM_PREFIX),
            name=name,
            empty_timeout=empty_timeout or self.config.empty_timeout,
            departure_timeout=departure_timeout or self.config.departure_timeout,
            max_participants=max_participants,
            creation_time=int(now),
            creation_time_ms=int(now * 1000),
            turn_password=secrets.token_urlsafe(24),
            metadata=metadata,
        )
        info.enabled_codecs.extend(models.Codec(mime=mime) for mime in DEFAULT_CODECS)
        room = Room(info=info)
        self.rooms[name] = room
        self._schedule_close(room, room.info.empty_timeout)
        self.emit("room_started", room=room.to_proto())
        return room, True

    def _schedule_close(self, room: Room, seconds: float) -> None:
        if room.close_timer is not None:
            room.close_timer.cancel()
        room.close_timer = asyncio.get_running_loop().call_later(seconds, self._close_if_empty, room)

    def _close_if_empty(self, room: Room) -> None:
        room.close_timer = None
        if not room.closed and not room.counted():
            self.room_close(room, models.DisconnectReason.ROOM_CLOSED)

    def room_close(self, room: Room, reason: int) -> None:
        """Close the room: stop its egress, disconnect everyone (``reason``), fire room_finished."""
        if room.closed:
            return
        if room.close_timer is not None:
            room.close_timer.cancel()
            room.close_timer = None
        self.egress.on_room_closed(room)
        for participant in list(room.participants.values()):
            self.participant_leave(room, participant, reason, room_closing=True)
        room.closed = True
        self.rooms.pop(room.name, None)
        self.emit("room_finished", room=room.to_proto())
        self.ingress.on_room_closed(room)

    # -- participants ----------------------------------------------------------------------------------------
    def participant_join(
        self,
        room_name: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        kind: int = models.ParticipantInfo.Kind.STANDARD,
        permission: models.ParticipantPermission | None = None,
        room_config: dict[str, Any] | None = None,
    ) -> tuple[Room, Participant]:
        """Join ``identity`` to the room (auto-created), reaching ACTIVE at once and firing participant_joined.

        A participant with the same identity is disconnected first (DUPLICATE_IDENTITY), as the server does.
        Raises EmulatorError 403 when the room is full.
        """
        if not identity:
            raise EmulatorError(401, "unauthenticated", "token has no identity (sub)")
        config = room_config or {}
        room, _ = self.room_create(
            room_name,
            empty_timeout=int(config.get("emptyTimeout") or 0),
            departure_timeout=int(config.get("departureTimeout") or 0),
            max_participants=int(config.get("maxParticipants") or 0),
            metadata=str(config.get("metadata") or ""),
        )
        existing = room.participants.get(identity)
        if existing is not None:
            self.participant_leave(room, existing, models.DisconnectReason.DUPLICATE_IDENTITY)
        dependent = kind in DEPENDENT_KINDS
        if not dependent and room.info.max_participants and len(room.counted()) >= room.info.max_participants:
            raise EmulatorError(403, "room_full", "room is full: max_participants reached")
        now = time.time()
        info = models.ParticipantInfo(
            sid=new_id(PARTICIPANT_PREFIX),
            identity=identity,
            name=name,
            metadata=metadata,
            state=models.ParticipantInfo.State.ACTIVE,
            joined_at=int(now),
            joined_at_ms=int(now * 1000),
            kind=cast(Any, kind),
            region="emulator",
        )
        info.attributes.update(attributes or {})
        info.permission.CopyFrom(
            permission or models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True)
        )
        participant = Participant(info=info)
        room.participants[identity] = participant
        if not dependent:
            room.ever_joined = True
            if room.close_timer is not None:
                room.close_timer.cancel()
                room.close_timer = None
        self.emit("participant_joined", room=room.to_proto(), participant=participant.to_proto())
        self.rtc.on_participant_changed(room, participant)
        return room, participant

    def participant_join_with_grants(self, grants: Grants) -> tuple[Room, Participant]:
        """Join the participant a verified access token describes, as /rtc and the control API both do.

        Raises EmulatorError 403 without ``roomJoin`` or ``room``, or when the room is full."""
        if not grants.flag("roomJoin"):
            raise EmulatorError(403, "permission_denied", "token has no roomJoin grant")
        if not grants.room:
            raise EmulatorError(403, "permission_denied", "token has no room in its grant")
        claims = grants.claims
        kind = KINDS.get(str(claims.get("kind", "standard")).lower(), models.ParticipantInfo.Kind.STANDARD)
        attributes = claims.get("attributes") if isinstance(claims.get("attributes"), dict) else {}
        room_config = claims.get("roomConfig") if isinstance(claims.get("roomConfig"), dict) else None
        return self.participant_join(
            grants.room,
            grants.identity,
            name=str(claims.get("name") or ""),
            metadata=str(claims.get("metadata") or ""),
            attributes={str(k): str(v) for k, v in (attributes or {}).items()},
            kind=kind,
            permission=permission_from_grants(dict(grants.video)),
            room_config=room_config,
        )

    def participant_require(self, room: Room, identity: str) -> Participant:
        participant = room.participants.get(identity)
        if participant is None:
            raise EmulatorError(404, "not_found", f"participant {identity!r} is not in room {room.name!r}")
        return participant

    def participant_leave(
        self, room: Room, participant: Participant, reason: int, *, room_closing: bool = False
    ) -> None:
        """Disconnect: unpublish its tracks (track_unpublished each), then participant_left with ``reason``."""
        if room.participants.get(participant.identity) is not participant:
            return
        for track in list(participant.tracks.values()):
            self.track_unpublish(room, participant, track)
        del room.participants[participant.identity]
        participant.info.state = models.ParticipantInfo.State.DISCONNECTED
        participant.info.disconnect_reason = reason  # type: ignore[assignment]
        self.emit("participant_left", room=room.to_proto(), participant=participant.to_proto())
        self.rtc.on_participant_left(room, participant, reason)
        self.egress.on_participant_left(room, participant)
        if not room_closing and not room.counted() and room.ever_joined:
            self._schedule_close(room, room.info.departure_timeout)

    # -- tracks ----------------------------------------------------------------------------------------------
    def track_publish(
        self,
        room: Room,
        participant: Participant,
        *,
        kind: str,
        source: str,
        name: str = "",
        pcm: Path | None = None,
        audio_length: float = 0.0,
        delay: float = 0.0,
        unpublish_on_end: bool = True,
        check_permission: bool = True,
        info: models.TrackInfo | None = None,
    ) -> Track:
        """Publish a track; audio with ``pcm`` plays from ``delay`` s after now and, when ``unpublish_on_end``,
        is unpublished when it ends. ``info`` is the TrackInfo a real client's AddTrackRequest was given.
        Raises EmulatorError 403 when the participant may not publish it."""
        if kind not in ("audio", "video"):
            raise EmulatorError(400, "invalid_argument", "kind must be 'audio' or 'video'")
        if source.lower() not in SOURCE_NAMES:
            raise EmulatorError(400, "invalid_argument", f"unknown source {source!r}")
        source_value = SOURCE_NAMES[source.lower()]
        permission = participant.info.permission
        if check_permission:
            if not permission.can_publish:
                raise EmulatorError(403, "permission_denied", "participant does not have permission to publish")
            if permission.can_publish_sources and source_value not in permission.can_publish_sources:
                raise EmulatorError(403, "permission_denied", f"participant may not publish source {source!r}")
        is_audio = kind == "audio"
        if info is not None:
            live = Track(info, participant.identity, participant.info.sid, self.clock.now())
            return self._track_add(room, participant, live)
        info = models.TrackInfo(
            sid=new_id(TRACK_PREFIX),
            type=models.TrackType.AUDIO if is_audio else models.TrackType.VIDEO,
            name=name or source.lower(),
            source=source_value,
            mime_type="audio/opus" if is_audio else "video/H264",
            mid=str(len(participant.tracks)),
            stream="camera" if not is_audio else "microphone",
        )
        if not is_audio:
            info.width, info.height = 1280, 720
        now = self.clock.now()
        track = Track(
            info=info,
            participant_identity=participant.identity,
            participant_sid=participant.info.sid,
            published_at=now,
            pcm=pcm,
            audio_start=now + delay,
            audio_length=audio_length if pcm is not None else 0.0,
        )
        self._track_add(room, participant, track)
        if pcm is not None and unpublish_on_end:
            wall = self.clock.wall(delay + track.audio_length)
            track.end_timer = asyncio.get_running_loop().call_later(
                wall, self._unpublish_if_present, room, participant, track
            )
        return track

    def _track_add(self, room: Room, participant: Participant, track: Track) -> Track:
        participant.tracks[track.info.sid] = track
        room.track_history.append(track)
        self.emit(
            "track_published", room=room.to_proto(), participant=self._participant_ref(participant), track=track.info
        )
        self.rtc.on_track_published(room, participant, track)
        return track

    def _unpublish_if_present(self, room: Room, participant: Participant, track: Track) -> None:
        if participant.tracks.get(track.info.sid) is track and not room.closed:
            self.track_unpublish(room, participant, track)

    def track_unpublish(self, room: Room, participant: Participant, track: Track) -> None:
        if participant.tracks.pop(track.info.sid, None) is None:
            return
        if track.end_timer is not None:
            track.end_timer.cancel()
        track.unpublished_at = self.clock.now()
        for interval in track.mute_intervals:
            if len(interval) == 1:
                interval.append(track.unpublished_at)
        self.emit(
            "track_unpublished", room=room.to_proto(), participant=self._participant_ref(participant), track=track.info
        )
        self.rtc.on_track_unpublished(room, participant, track)
        self.egress.on_track_unpublished(room, track)

    def track_set_muted(self, track: Track, muted: bool, *, by_server: bool = False) -> None:
        """Mute or unmute; ``by_server`` (MutePublishedTrack) also asks a real publisher to mute."""
        if track.info.muted == muted:
            return
        track.info.muted = muted
        now = self.clock.now()
        if muted:
            track.mute_intervals.append([now])
        elif track.mute_intervals and len(track.mute_intervals[-1]) == 1:
            track.mute_intervals[-1].append(now)
        # LiveKit Egress sends exactly this text frame to a websocket track egress.
        track.notify({"muted": muted})
        self.rtc.on_track_muted(track, by_server=by_server)

    def find_track(self, room: Room, track_sid: str) -> tuple[Participant, Track] | None:
        for participant in room.participants.values():
            track = participant.tracks.get(track_sid)
            if track is not None:
                return participant, track
        return None

    @staticmethod
    def _participant_ref(participant: Participant) -> models.ParticipantInfo:
        return models.ParticipantInfo(sid=participant.info.sid, identity=participant.identity)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def all_rooms(self) -> Iterable[Room]:
        return list(self.rooms.values())

    async def reset(self) -> None:
        """Forget everything (no webhooks are sent for what is dropped)."""
        for room in self.all_rooms():
            if room.close_timer is not None:
                room.close_timer.cancel()
            for participant in room.participants.values():
                for track in participant.tracks.values():
                    if track.end_timer is not None:
                        track.end_timer.cancel()
        self.rooms.clear()
        await self.rtc.reset()
        await self.egress.reset()
        self.ingress.reset()
        self.webhooks.reset()

    async def close(self) -> None:
        await self.rtc.reset()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.webhooks.close()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
