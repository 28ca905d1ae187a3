"""Ingress: create/update/list/delete with the server's semantics (livekit.md §5) and a simulated publisher."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from livekit.protocol import ingress as proto
from livekit.protocol import models

from .core import Emulator, EmulatorError, Room
from .ids import INGRESS_PREFIX, new_id, random_base57
from .twirp import invalid_argument, not_found

Status = proto.IngressState.Status


class IngressManager:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.items: dict[str, proto.IngressInfo] = {}

    # -- RPCs ------------------------------------------------------------------------------------------------
    def create(self, request: proto.CreateIngressRequest) -> proto.IngressInfo:
        if not request.participant_identity:
            raise invalid_argument("invalid ingress: no participant identity")
        input_type = request.input_type
        transcoding = request.enable_transcoding if request.HasField("enable_transcoding") else None
        if transcoding is None:
            transcoding = input_type != proto.WHIP_INPUT and not request.bypass_transcoding
        if not transcoding and input_type != proto.WHIP_INPUT:
            raise invalid_argument("transcoding can only be disabled for WHIP inputs")
        info = proto.IngressInfo(
            ingress_id=new_id(INGRESS_PREFIX),
            name=request.name,
            input_type=input_type,
            room_name=request.room_name,
            participant_identity=request.participant_identity,
            participant_name=request.participant_name,
            participant_metadata=request.participant_metadata,
            enable_transcoding=transcoding,
            bypass_transcoding=not transcoding,
            enabled=request.enabled if request.HasField("enabled") else True,
            state=proto.IngressState(),
        )
        info.audio.CopyFrom(request.audio)
        info.video.CopyFrom(request.video)
        config = self.emulator.config
        if input_type == proto.URL_INPUT:
            parsed = urlparse(request.url)
            if parsed.scheme not in ("http", "https", "srt") or not parsed.netloc:
                raise invalid_argument("invalid ingress: url must be http, https or srt")
            if not request.room_name:
                raise invalid_argument("invalid ingress: no room name")
            info.url = parsed.geturl()
            info.reusable = False
        else:
            base = config.whip_base_url if input_type == proto.WHIP_INPUT else config.rtmp_base_url
            info.url = base
            info.stream_key = random_base57(12)
            info.reusable = True
        self.items[info.ingress_id] = info
        if input_type == proto.URL_INPUT:
            # URL inputs are pulled by the server at once.
            self._start_publishing(info)
        return self._copy(info)

    def update(self, request: proto.UpdateIngressRequest) -> proto.IngressInfo:
        info = self._get(request.ingress_id)
        if not info.reusable:
            raise invalid_argument("ingress is not reusable and cannot be modified")
        if info.state.status == Status.ENDPOINT_ERROR:
            info.state.Clear()
        for name in ("name", "room_name", "participant_identity", "participant_name", "participant_metadata"):
            value = getattr(request, name)
            if value:
                setattr(info, name, value)
        if request.HasField("enable_transcoding"):
            info.enable_transcoding = request.enable_transcoding
            info.bypass_transcoding = not request.enable_transcoding
        if request.HasField("enabled"):
            info.enabled = request.enabled
        if request.HasField("audio"):
            info.audio.CopyFrom(request.audio)
        if request.HasField("video"):
            info.video.CopyFrom(request.video)
        return self._copy(info)

    def list_ingress(self, request: proto.ListIngressRequest) -> proto.ListIngressResponse:
        items = [self._get(request.ingress_id)] if request.ingress_id else list(self.items.values())
        if request.room_name:
            items = [i for i in items if i.room_name == request.room_name]
        return proto.ListIngressResponse(items=[self._copy(i) for i in items])

    def delete(self, request: proto.DeleteIngressRequest) -> proto.IngressInfo:
        info = self._get(request.ingress_id)
        # Deleting sends no webhook; a connected publisher is dropped from the room.
        self._leave_room(info)
        del self.items[info.ingress_id]
        copy = self._copy(info)
        copy.state.status = Status.ENDPOINT_INACTIVE
        return copy

    # -- simulated publisher ---------------------------------------------------------------------------------
    async def publish(self, ingress_id: str, options: dict[str, Any]) -> proto.IngressInfo:
        """A publisher connects to the ingress: PUBLISHING, ingress_started, the participant joins."""
        info = self.items.get(ingress_id)
        if info is None:
            raise EmulatorError(404, "not_found", "ingress does not exist")
        if not info.enabled:
            raise EmulatorError(409, "failed_precondition", "ingress is disabled")
        if info.state.status == Status.ENDPOINT_PUBLISHING:
            raise EmulatorError(409, "failed_precondition", "ingress is already publishing")
        if not info.room_name:
            raise EmulatorError(409, "failed_precondition", "ingress has no room name")
        pcm, length = await prepare_audio(self.emulator, options)
        self._start_publishing(info, pcm=pcm, length=length)
        return self._copy(info)

    def unpublish(self, ingress_id: str, error: str = "") -> proto.IngressInfo:
        """The publisher stops: INACTIVE (or ERROR with ``error``), ingress_ended, the participant leaves."""
        info = self.items.get(ingress_id)
        if info is None:
            raise EmulatorError(404, "not_found", "ingress does not exist")
        if info.state.status not in (Status.ENDPOINT_PUBLISHING, Status.ENDPOINT_BUFFERING):
            raise EmulatorError(409, "failed_precondition", "ingress is not publishing")
        self._leave_room(info)
        self._end(info, error)
        return self._copy(info)

    def _start_publishing(self, info: proto.IngressInfo, pcm: Path | None = None, length: float = 0.0) -> None:
        emulator = self.emulator
        now = time.time_ns()
        room, participant = emulator.participant_join(
            info.room_name,
            info.participant_identity,
            name=info.participant_name,
            metadata=info.participant_metadata,
            kind=models.ParticipantInfo.Kind.INGRESS,
        )
        info.state.Clear()
        info.state.status = Status.ENDPOINT_PUBLISHING
        info.state.room_id = room.info.sid
        info.state.started_at = now
        info.state.updated_at = now
        info.state.resource_id = "RS_" + random_base57(12)
        info.state.audio.CopyFrom(
            proto.InputAudioState(mime_type="audio/opus", channels=1, sample_rate=48000, average_bitrate=64000)
        )
        info.state.video.CopyFrom(
            proto.InputVideoState(
                mime_type="video/H264", width=1280, height=720, framerate=30, average_bitrate=1_500_000
            )
        )
        audio_source = models.TrackSource.Name(info.audio.source or models.TrackSource.MICROPHONE).lower()
        video_source = models.TrackSource.Name(info.video.source or models.TrackSource.CAMERA).lower()
        tracks = [
            emulator.track_publish(
                room,
                participant,
                kind="audio",
                source=audio_source,
                name=info.audio.name,
                pcm=pcm,
                audio_length=length,
                unpublish_on_end=False,
                check_permission=False,
            ),
            emulator.track_publish(
                room, participant, kind="video", source=video_source, name=info.video.name, check_permission=False
            ),
        ]
        info.state.tracks.extend(t.info for t in tracks)
        emulator.emit("ingress_started", room=models.Room(name=info.room_name), ingress_info=self._copy(info))

    def _leave_room(self, info: proto.IngressInfo) -> None:
        room = self.emulator.room_get(info.room_name)
        if room is None:
            return
        participant = room.participants.get(info.participant_identity)
        if participant is not None and participant.info.kind == models.ParticipantInfo.Kind.INGRESS:
            self.emulator.participant_leave(room, participant, models.DisconnectReason.CLIENT_INITIATED)

    def _end(self, info: proto.IngressInfo, error: str = "") -> None:
        now = time.time_ns()
        info.state.status = Status.ENDPOINT_ERROR if error else Status.ENDPOINT_INACTIVE
        info.state.error = error
        info.state.ended_at = now
        info.state.updated_at = now
        del info.state.tracks[:]
        self.emulator.emit("ingress_ended", room=models.Room(name=info.room_name), ingress_info=self._copy(info))

    def on_room_closed(self, room: Room) -> None:
        for info in self.items.values():
            if info.room_name == room.name and info.state.status == Status.ENDPOINT_PUBLISHING:
                self._end(info)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _get(self, ingress_id: str) -> proto.IngressInfo:
        info = self.items.get(ingress_id)
        if info is None:
            raise not_found("ingress does not exist")
        return info

    @staticmethod
    def _copy(info: proto.IngressInfo) -> proto.IngressInfo:
        copy = proto.IngressInfo()
        copy.CopyFrom(info)
        return copy

    def reset(self) -> None:
        self.items.clear()


async def prepare_audio(emulator: Emulator, options: dict[str, Any]) -> tuple[Path | None, float]:
    """Decode ``options["file"]`` or generate ``options["tone"]`` to PCM in the work folder.

    Returns (pcm path, seconds), or (None, 0.0) when neither is given. Raises EmulatorError 400 on bad input.
    """
    from .media import MediaError, decode_to_pcm, generate_tone

    path = emulator.work_dir / f"{new_id('PCM_')}.pcm"
    try:
        if options.get("file"):
            return path, await decode_to_pcm(Path(str(options["file"])), path)
        tone = options.get("tone")
        if tone:
            if not isinstance(tone, dict):
                raise EmulatorError(400, "invalid_argument", "tone must be an object {frequency, seconds}")
            frequency = float(tone.get("frequency", 440))
            seconds = float(tone.get("seconds", 1))
            if not 0 < seconds <= 3600 or not 0 < frequency < 24000:
                raise EmulatorError(400, "invalid_argument", "tone needs 0 < seconds <= 3600, 0 < frequency < 24000")
            return path, await generate_tone(frequency, seconds, path)
    except MediaError as exc:
        raise EmulatorError(400, "media_error", str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise EmulatorError(400, "invalid_argument", f"bad tone: {exc}") from exc
    return None, 0.0
