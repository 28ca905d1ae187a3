"""Egress: the LiveKit Egress state machine (livekit.md §4.5) backed by real ffmpeg output.

A job starts STARTING, becomes ACTIVE after ``egress_start_delay`` (its recorder participant joins then), and ends
COMPLETE after its file is rendered and stored — or ABORTED, FAILED or LIMIT_REACHED. The recorded span is the media
time between ACTIVE and the stop; audio tracks are placed at their offsets within that span.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from google.protobuf.message import Message
from livekit.protocol import egress as proto
from livekit.protocol import models

from .core import Emulator, Participant, Room, Track
from .filepath import TemplateValues, resolve_filepath
from .ids import EGRESS_PREFIX, new_id
from .media import BYTES_PER_SAMPLE, FRAME_MS, SAMPLE_RATE, MediaError, Placement, render
from .storage import UploadError, store
from .twirp import TwirpError, failed_precondition, invalid_argument, not_found

log = logging.getLogger("livekit_emulator.egress")

S = proto.EgressStatus
ENDED = (S.EGRESS_COMPLETE, S.EGRESS_FAILED, S.EGRESS_ABORTED, S.EGRESS_LIMIT_REACHED)
EXTENSIONS = {proto.MP4: ".mp4", proto.OGG: ".ogg", proto.MP3: ".mp3"}
CONTAINERS = {".mp4": "mp4", ".ogg": "ogg", ".mp3": "mp3"}


def now_ns() -> int:
    return time.time_ns()


def redact(request: Message) -> None:
    """Replace upload credentials in the stored request copy with LiveKit's placeholders (egress/redact.go)."""
    for descriptor, value in request.ListFields():
        if descriptor.message_type is None:
            continue
        values = value if descriptor.is_repeated else [value]
        for raw in values:
            if not isinstance(raw, Message):
                continue  # map entries iterate as their keys
            item: Any = raw
            name = item.DESCRIPTOR.name
            if name == "S3Upload":
                for attr, placeholder in (
                    ("access_key", "{access_key}"),
                    ("secret", "{secret}"),
                    ("session_token", "{session_token}"),
                    ("assume_role_external_id", "{external_id}"),
                ):
                    if getattr(item, attr):
                        setattr(item, attr, placeholder)
            elif name == "GCPUpload" and item.credentials:
                item.credentials = "{credentials}"
            elif name == "AzureBlobUpload":
                if item.account_name:
                    item.account_name = "{account_name}"
                if item.account_key:
                    item.account_key = "{account_key}"
            elif name == "AliOSSUpload":
                if item.access_key:
                    item.access_key = "{access_key}"
                if item.secret:
                    item.secret = "{secret}"  # noqa: S105 - a placeholder, as LiveKit writes it
            else:
                redact(item)


@dataclass
class EgressJob:
    info: proto.EgressInfo
    room: Room
    output: Any = None  # EncodedFileOutput / DirectFileOutput with the real credentials
    extension: str = ""
    audio: bool = True
    video: bool = False
    track_ids: tuple[str, ...] = ()
    identity: str = ""
    websocket_url: str = ""
    media_start: float | None = None
    media_end: float | None = None
    active_wall_ns: int = 0
    start_timer: asyncio.TimerHandle | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    source_closed: bool = False
    extra_targets: list[tuple[str, str]] = field(default_factory=list)
    finalizing: bool = False

    @property
    def egress_id(self) -> str:
        return self.info.egress_id

    @property
    def ended(self) -> bool:
        return self.info.status in ENDED


class EgressManager:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.jobs: dict[str, EgressJob] = {}
        self.fail_new = False
        self.fail_storage = False

    # -- RPC entry points ------------------------------------------------------------------------------------
    def start_room_composite(self, request: proto.RoomCompositeEgressRequest) -> proto.EgressInfo:
        room = self._room(request.room_name)
        if request.audio_only and request.video_only:
            raise invalid_argument("request has missing or invalid field: audio_only and video_only")
        if request.custom_base_url and not request.custom_base_url.startswith(("http://", "https://")):
            raise invalid_argument("request has missing or invalid field: template base url")
        output = self._single_file_output(request)
        extension = self._extension(output.file_type, audio_only=request.audio_only)
        job = self._new_job(room, request, "room_composite", proto.EGRESS_SOURCE_TYPE_WEB)
        job.output, job.extension = output, extension
        job.audio = not request.video_only
        job.video = not request.audio_only and extension == ".mp4"
        self._set_filename(job, output.filepath, TemplateValues(room_name=room.name, room_id=room.info.sid))
        return self._launch(job, request.webhooks)

    def start_participant(self, request: proto.ParticipantEgressRequest) -> proto.EgressInfo:
        room = self._room(request.room_name)
        if not request.identity:
            raise invalid_argument("request has missing or invalid field: identity")
        output = self._single_file_output(request)
        extension = self._extension(output.file_type, audio_only=False)
        job = self._new_job(room, request, "participant", proto.EGRESS_SOURCE_TYPE_SDK)
        job.output, job.extension, job.identity = output, extension, request.identity
        job.video = extension == ".mp4"
        values = TemplateValues(room_name=room.name, room_id=room.info.sid, publisher_identity=request.identity)
        self._set_filename(job, output.filepath, values)
        return self._launch(job, request.webhooks)

    def start_track_composite(self, request: proto.TrackCompositeEgressRequest) -> proto.EgressInfo:
        room = self._room(request.room_name)
        if not request.audio_track_id and not request.video_track_id:
            raise invalid_argument("request has missing or invalid field: track_id")
        output = self._single_file_output(request)
        extension = self._extension(output.file_type, audio_only=not request.video_track_id)
        job = self._new_job(room, request, "track_composite", proto.EGRESS_SOURCE_TYPE_SDK)
        job.output, job.extension = output, extension
        job.track_ids = tuple(t for t in (request.audio_track_id, request.video_track_id) if t)
        job.audio = bool(request.audio_track_id)
        job.video = bool(request.video_track_id) and extension == ".mp4"
        self._set_filename(job, output.filepath, TemplateValues(room_name=room.name, room_id=room.info.sid))
        return self._launch(job, request.webhooks)

    def start_track(self, request: proto.TrackEgressRequest) -> proto.EgressInfo:
        room = self._room(request.room_name)
        if not request.track_id:
            raise invalid_argument("request has missing or invalid field: track_id")
        which = request.WhichOneof("output")
        if which is None:
            raise invalid_argument("request has missing or invalid field: output")
        job = self._new_job(room, request, "track", proto.EGRESS_SOURCE_TYPE_SDK)
        job.track_ids = (request.track_id,)
        found = self.emulator.find_track(room, request.track_id)
        if which == "websocket_url":
            if not request.websocket_url.startswith(("ws://", "wss://")):
                raise invalid_argument("request has missing or invalid field: websocket_url")
            job.websocket_url = request.websocket_url
        else:
            job.output = request.file
            is_video = found is not None and not found[1].is_audio
            job.extension = ".mp4" if is_video else ".ogg"
            job.audio, job.video = not is_video, is_video
            values = TemplateValues(room_name=room.name, room_id=room.info.sid, track_id=request.track_id)
            if found is not None:
                participant, track = found
                values.publisher_identity = participant.identity
                values.track_type = "audio" if track.is_audio else "video"
                values.track_source = models.TrackSource.Name(track.info.source).lower()
            self._set_filename(job, request.file.filepath, values)
        return self._launch(job, request.webhooks)

    def stop(self, egress_id: str) -> proto.EgressInfo:
        job = self._job(egress_id)
        if job.info.status not in (S.EGRESS_STARTING, S.EGRESS_ACTIVE):
            raise failed_precondition(f"egress with status {S.Name(job.info.status)} cannot be stopped")
        if job.info.status == S.EGRESS_STARTING:
            self._abort(job, "Stop called before pipeline could start")
        else:
            self._begin_ending(job, "End reason: StopEgress API")
        return self._copy(job)

    def update_layout(self, egress_id: str, layout: str) -> proto.EgressInfo:
        job = self._job(egress_id)
        if job.info.status not in (S.EGRESS_STARTING, S.EGRESS_ACTIVE):
            raise failed_precondition(f"egress with status {S.Name(job.info.status)} cannot be updated")
        if job.info.HasField("room_composite"):
            job.info.room_composite.layout = layout
        recorder = job.room.participants.get(job.egress_id)
        if recorder is not None:
            recorder.info.metadata = json.dumps({"layout": layout})
        job.info.updated_at = now_ns()
        return self._copy(job)

    def list_egress(self, request: proto.ListEgressRequest) -> proto.ListEgressResponse:
        jobs = [self._job(request.egress_id)] if request.egress_id else list(self.jobs.values())
        if request.room_name:
            jobs = [j for j in jobs if j.info.room_name == request.room_name]
        if request.active:
            jobs = [j for j in jobs if j.info.status < S.EGRESS_COMPLETE]
        return proto.ListEgressResponse(items=[self._copy(j) for j in jobs])

    # -- control-API entry points ----------------------------------------------------------------------------
    def force_fail(self, egress_id: str, error: str) -> proto.EgressInfo:
        job = self._job(egress_id)
        if job.ended:
            raise failed_precondition(f"egress with status {S.Name(job.info.status)} has already ended")
        self._fail(job, error or "egress failed (emulated)")
        return self._copy(job)

    def force_limit(self, egress_id: str) -> proto.EgressInfo:
        job = self._job(egress_id)
        if job.info.status == S.EGRESS_STARTING:
            self._abort(job, "Session limit reached before start signal")
        elif job.info.status == S.EGRESS_ACTIVE:
            job.info.status = S.EGRESS_LIMIT_REACHED
            job.info.error = "Session limit reached"
            job.info.error_code = 413
            job.info.details = "End reason: Session limit reached"
            self._finish_recording(job)
        else:
            raise failed_precondition(f"egress with status {S.Name(job.info.status)} cannot reach its limit")
        return self._copy(job)

    # -- notifications from the room model -------------------------------------------------------------------
    def on_room_closed(self, room: Room) -> None:
        for job in list(self.jobs.values()):
            if job.room is room:
                self._source_closed(job)

    def on_track_unpublished(self, room: Room, track: Track) -> None:
        for job in list(self.jobs.values()):
            if job.room is room and track.info.sid in job.track_ids:
                self._source_closed(job)

    def on_participant_left(self, room: Room, participant: Participant) -> None:
        for job in list(self.jobs.values()):
            if job.room is room and job.identity and job.identity == participant.identity:
                self._source_closed(job)

    # -- state machine ---------------------------------------------------------------------------------------
    def _new_job(self, room: Room, request: Message, field_name: str, source_type: int) -> EgressJob:
        now = now_ns()
        info = proto.EgressInfo(
            egress_id=new_id(EGRESS_PREFIX),
            room_id=room.info.sid,
            room_name=room.name,
            source_type=source_type,  # type: ignore[arg-type]
            status=S.EGRESS_STARTING,
            started_at=now,
            updated_at=now,
        )
        stored = type(request)()
        stored.CopyFrom(request)
        redact(stored)
        getattr(info, field_name).CopyFrom(stored)
        return EgressJob(info=info, room=room)

    def _launch(self, job: EgressJob, webhooks: Any) -> proto.EgressInfo:
        job.extra_targets = [(w.url, w.signing_key) for w in webhooks if w.url]
        self.jobs[job.egress_id] = job
        self._emit(job, "egress_started")
        delay = self.emulator.config.egress_start_delay
        job.start_timer = asyncio.get_running_loop().call_later(delay, lambda: self.emulator.spawn(self._activate(job)))
        return self._copy(job)

    async def _activate(self, job: EgressJob) -> None:
        job.start_timer = None
        if job.info.status != S.EGRESS_STARTING:
            return
        if self.fail_new:
            self._fail(job, "egress failed to start (emulated egress_fail fault)")
            return
        if job.room.closed:
            self._abort(job, "Stop called before pipeline could start")
            return
        if job.info.HasField("track") and self.emulator.find_track(job.room, job.track_ids[0]) is None:
            self._fail(job, f"track {job.track_ids[0]} not found")
            return
        if job.identity and job.identity not in job.room.participants:
            self._fail(job, f"participant {job.identity} not found")
            return
        websocket: aiohttp.ClientWebSocketResponse | None = None
        session: aiohttp.ClientSession | None = None
        if job.websocket_url:
            session = aiohttp.ClientSession()
            try:
                websocket = await session.ws_connect(job.websocket_url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                await session.close()
                self._fail(job, f"websocket dial failed: {exc}")
                return
            if job.info.status != S.EGRESS_STARTING:
                await websocket.close()
                await session.close()
                return
        job.media_start = self.emulator.clock.now()
        job.active_wall_ns = now_ns()
        job.info.status = S.EGRESS_ACTIVE
        job.info.updated_at = job.active_wall_ns
        self._join_recorder(job)
        self._emit(job, "egress_updated")
        if websocket is not None and session is not None:
            await self._stream(job, websocket, session)

    def _join_recorder(self, job: EgressJob) -> None:
        if job.room.closed:
            return
        permission = models.ParticipantPermission(can_subscribe=True, hidden=True, recorder=True)
        try:
            self.emulator.participant_join(
                job.room.name, job.egress_id, kind=models.ParticipantInfo.Kind.EGRESS, permission=permission
            )
        except Exception:  # a full room must not stop the recording; the recorder is dependent anyway
            log.exception("recorder participant for %s could not join", job.egress_id)

    def _leave_recorder(self, job: EgressJob) -> None:
        recorder = job.room.participants.get(job.egress_id)
        if recorder is not None and not job.room.closed:
            self.emulator.participant_leave(job.room, recorder, models.DisconnectReason.CLIENT_INITIATED)

    def _source_closed(self, job: EgressJob) -> None:
        if job.info.status == S.EGRESS_STARTING:
            self._abort(job, "Stop called before pipeline could start")
        elif job.info.status == S.EGRESS_ACTIVE:
            if job.websocket_url:
                # The streaming task sends what is left of the track, then finishes the egress itself.
                job.source_closed = True
                job.info.details = "End reason: Source closed"
            else:
                self._begin_ending(job, "End reason: Source closed")

    def _begin_ending(self, job: EgressJob, details: str) -> None:
        job.info.status = S.EGRESS_ENDING
        job.info.details = details
        job.info.updated_at = now_ns()
        self._emit(job, "egress_updated")
        if job.websocket_url:
            job.stop_requested.set()
        else:
            self._finish_recording(job)

    def _finish_recording(self, job: EgressJob) -> None:
        job.media_end = self.emulator.clock.now()
        self._leave_recorder(job)
        self.emulator.spawn(self._finalize(job))

    def _abort(self, job: EgressJob, error: str) -> None:
        if job.start_timer is not None:
            job.start_timer.cancel()
            job.start_timer = None
        job.info.status = S.EGRESS_ABORTED
        job.info.error = error
        job.info.error_code = 412
        self._end(job)

    def _fail(self, job: EgressJob, error: str, code: int = 500) -> None:
        if job.start_timer is not None:
            job.start_timer.cancel()
            job.start_timer = None
        job.stop_requested.set()
        job.info.status = S.EGRESS_FAILED
        job.info.error = error
        job.info.error_code = code
        self._leave_recorder(job)
        self._end(job)

    def _end(self, job: EgressJob) -> None:
        job.info.ended_at = job.info.updated_at = now_ns()
        self._emit(job, "egress_ended")

    async def _finalize(self, job: EgressJob) -> None:
        if job.finalizing:
            return
        job.finalizing = True
        assert job.media_start is not None and job.media_end is not None
        if job.info.HasField("track"):
            # A track egress file begins with the first media packet it receives, not when the egress started.
            for track in job.room.track_history:
                if track.info.sid in job.track_ids and track.pcm is not None:
                    job.media_start = min(max(job.media_start, track.audio_start), job.media_end)
        duration = max(0.0, job.media_end - job.media_start)
        ended_ns = now_ns()
        file_info = job.info.file_results[0] if job.info.file_results else None
        try:
            if file_info is not None:
                temp = self.emulator.work_dir / f"{job.egress_id}{job.extension}"
                await render(
                    self._placements(job),
                    duration,
                    temp,
                    container=CONTAINERS[job.extension],
                    video=job.video,
                    audio=job.audio,
                )
                size = temp.stat().st_size
                if self.fail_storage:
                    temp.unlink(missing_ok=True)
                    raise UploadError("failed to upload file: emulated storage_fail fault")
                location = await store(temp, file_info.filename, job.output, self.emulator.config.file_output_dir)
                file_info.location = location
                file_info.size = size
                file_info.started_at = job.active_wall_ns
                file_info.ended_at = ended_ns
                file_info.duration = int(duration * 1e9)
        except (MediaError, UploadError) as exc:
            if job.info.status not in (S.EGRESS_FAILED, S.EGRESS_ABORTED):
                self._fail(job, str(exc))
            return
        if job.info.status in (S.EGRESS_FAILED, S.EGRESS_ABORTED):  # failed by the control API while rendering
            return
        if job.info.status != S.EGRESS_LIMIT_REACHED:
            job.info.status = S.EGRESS_COMPLETE
        self._end(job)

    def _placements(self, job: EgressJob) -> list[Placement]:
        assert job.media_start is not None and job.media_end is not None
        start, end = job.media_start, job.media_end
        placements = []
        for track in job.room.track_history:
            if not track.is_audio or track.pcm is None:
                continue
            if job.track_ids and track.info.sid not in job.track_ids:
                continue
            if job.identity and track.participant_identity != job.identity:
                continue
            lo, hi = max(start, track.audio_start), min(end, track.audio_end())
            if hi <= lo:
                continue
            placements.append(
                Placement(
                    pcm=track.pcm,
                    source_start=lo - track.audio_start,
                    at=lo - start,
                    length=hi - lo,
                    muted=track.muted_between(start, end),
                )
            )
        return placements

    # -- websocket streaming ---------------------------------------------------------------------------------
    async def _stream(
        self, job: EgressJob, websocket: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession
    ) -> None:
        """Send the track's PCM as 20 ms binary frames, paced by the media clock; mute events as text frames."""
        found = self.emulator.find_track(job.room, job.track_ids[0])
        track = found[1] if found else None
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        frame_samples = SAMPLE_RATE * FRAME_MS // 1000
        clock = self.emulator.clock
        try:
            if track is None or track.pcm is None or not track.is_audio:
                # A track without audio content: nothing to send until it ends or the egress is stopped.
                while not job.stop_requested.is_set() and not job.source_closed:
                    await asyncio.sleep(0.05)
            else:
                track.listeners.append(events)
                assert job.media_start is not None
                cursor = max(0, round((job.media_start - track.audio_start) * SAMPLE_RATE))
                with open(track.pcm, "rb") as pcm:
                    while not job.stop_requested.is_set():
                        while not events.empty():
                            await websocket.send_str(json.dumps(events.get_nowait()))
                        end_sample = round((track.audio_end() - track.audio_start) * SAMPLE_RATE)
                        played = round((clock.now() - track.audio_start) * SAMPLE_RATE)
                        while cursor < min(played, end_sample) and not job.stop_requested.is_set():
                            count = min(frame_samples, end_sample - cursor)
                            if cursor + count > played and played < end_sample:
                                break
                            pcm.seek(cursor * BYTES_PER_SAMPLE)
                            chunk = pcm.read(count * BYTES_PER_SAMPLE)
                            at = track.audio_start + cursor / SAMPLE_RATE
                            if chunk and not track.muted_between(at, at + count / SAMPLE_RATE):
                                await websocket.send_bytes(chunk)
                            cursor += count
                        if cursor >= end_sample and (job.source_closed or track.unpublished_at is not None):
                            break
                        await asyncio.sleep(max(0.002, clock.wall(FRAME_MS / 1000)))
        except (aiohttp.ClientError, ConnectionError) as exc:
            if not job.ended:
                self._fail(job, f"websocket send failed: {exc}")
        finally:
            if track is not None and events in track.listeners:
                track.listeners.remove(events)
            await websocket.close()
            await session.close()
        if job.ended:
            return
        if job.info.status == S.EGRESS_ACTIVE:
            job.info.status = S.EGRESS_ENDING
            job.info.details = job.info.details or "End reason: Source closed"
            job.info.updated_at = now_ns()
            self._emit(job, "egress_updated")
        job.media_end = clock.now()
        self._leave_recorder(job)
        job.info.status = S.EGRESS_COMPLETE
        self._end(job)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _room(self, name: str) -> Room:
        room = self.emulator.room_get(name)
        if room is None:
            raise not_found("requested room does not exist")
        return room

    def _job(self, egress_id: str) -> EgressJob:
        job = self.jobs.get(egress_id)
        if job is None:
            raise not_found("egress does not exist")
        return job

    @staticmethod
    def _single_file_output(request: Any) -> Any:
        outputs = list(request.file_outputs)
        legacy = request.WhichOneof("output") if "output" in request.DESCRIPTOR.oneofs_by_name else None
        if legacy == "file":
            outputs.append(request.file)
        if len(outputs) > 1:
            raise invalid_argument("request has missing or invalid field: multiple file outputs")
        if (
            request.stream_outputs
            or request.segment_outputs
            or request.image_outputs
            or legacy in ("stream", "segments")
        ):
            raise TwirpError("unimplemented", "the emulator only supports file outputs")
        if not outputs:
            raise invalid_argument("request has missing or invalid field: output")
        output = outputs[0]
        if isinstance(output, proto.EncodedFileOutput):
            return output
        converted = proto.EncodedFileOutput(file_type=output.file_type, filepath=output.filepath)
        if output.WhichOneof("output") == "s3":
            converted.s3.CopyFrom(output.s3)
        return converted

    @staticmethod
    def _extension(file_type: int, *, audio_only: bool) -> str:
        if file_type == proto.DEFAULT_FILETYPE:
            return ".ogg" if audio_only else ".mp4"
        return EXTENSIONS.get(file_type, ".mp4")  # type: ignore[call-overload]

    def _set_filename(self, job: EgressJob, template: str, values: TemplateValues) -> None:
        filename = resolve_filepath(template, job.extension, values)
        job.info.file_results.append(proto.FileInfo(filename=filename))

    def _emit(self, job: EgressJob, event: str) -> None:
        room = models.Room(sid=job.info.room_id, name=job.info.room_name)
        self.emulator.emit(event, room=room, egress_info=self._copy(job), extra_targets=job.extra_targets)

    @staticmethod
    def _copy(job: EgressJob) -> proto.EgressInfo:
        info = proto.EgressInfo()
        info.CopyFrom(job.info)
        return info

    def snapshot(self) -> list[EgressJob]:
        return list(self.jobs.values())

    async def reset(self) -> None:
        for job in self.jobs.values():
            if job.start_timer is not None:
                job.start_timer.cancel()
            job.stop_requested.set()
        self.jobs.clear()
        self.fail_new = False
        self.fail_storage = False
