"""The one gateway to LiveKit: tokens, RoomService, Egress, Ingress, webhook verification.

It talks to LiveKit only through the official `livekit-api` SDK over HTTP, so it cannot
tell a real LiveKit from the built-in emulator. The SDK is async; Django views and Celery
tasks are sync. Each process runs one private event loop in a daemon thread that owns
one aiohttp session, and sync callers submit coroutines to it with a bounded wait. The
loop is recreated after a fork (Celery's prefork pool), so no loop or session is shared
across processes.

Errors: transport failure or time-out -> LiveKitUnreachable (502); no LiveKit configured
-> LiveKitNotConfigured (503); LiveKit `not_found` -> LiveKitNotFound (404); any other
LiveKit error -> LiveKitFailure (502, LiveKit's message). Surfaces re-label the codes
(`SW_CALL_LIVEKIT_UNREACHABLE` on the calls surface).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import calendar
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from django.conf import settings
from google.protobuf.json_format import MessageToDict, Parse, ParseError
from google.protobuf.message import Message
from livekit import api as lk
from livekit.api.access_token import snake_to_lower_camel
from livekit.protocol import egress as lk_egress
from livekit.protocol import ingress as lk_ingress
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk_room
from livekit.protocol import webhook as lk_webhook

from scaiwave.api.errors import ProblemError

logger = logging.getLogger("scaiwave.livekit")
T = TypeVar("T")


# --- Errors ----------------------------------------------------------------------------------


class LiveKitError(ProblemError):
    """Base of every failure talking to LiveKit."""


class LiveKitUnreachable(LiveKitError):
    def __init__(self, detail: str = "LiveKit could not be reached.") -> None:
        super().__init__(502, "livekit_unreachable", detail)


class LiveKitNotConfigured(LiveKitError):
    def __init__(self) -> None:
        super().__init__(503, "livekit_not_configured", "No LiveKit server is configured.")


class LiveKitNotFound(LiveKitError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, "livekit_not_found", detail or "LiveKit does not know this resource.")


class LiveKitFailure(LiveKitError):
    def __init__(self, detail: str, *, livekit_code: str = "unknown", livekit_status: int = 0) -> None:
        super().__init__(502, "livekit_error", f"LiveKit refused the request: {detail or livekit_code}")
        self.livekit_code = livekit_code
        self.livekit_status = livekit_status


# --- The per-process loop ---------------------------------------------------------------------


class _LoopThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="livekit-gateway", daemon=True)
        self.thread.start()

    async def client(self) -> lk.LiveKitAPI:
        if self.session is None or self.session.closed:
            timeout = aiohttp.ClientTimeout(total=settings.LIVEKIT_TIMEOUT, connect=min(2.0, settings.LIVEKIT_TIMEOUT))
            self.session = aiohttp.ClientSession(timeout=timeout)
        return lk.LiveKitAPI(
            url=settings.LIVEKIT_URL,
            api_key=settings.LIVEKIT_API_KEY,
            api_secret=settings.LIVEKIT_API_SECRET,
            session=self.session,
            failover=False,
        )

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()


_loop_lock = threading.Lock()
_loop: _LoopThread | None = None


@atexit.register
def _close_session_at_exit() -> None:
    # Close the shared session on interpreter exit so aiohttp does not warn about a leak.
    runner = _loop
    if runner is None or runner.pid != os.getpid() or not runner.thread.is_alive():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(runner.close(), runner.loop).result(timeout=2)


def _loop_thread() -> _LoopThread:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid() or not _loop.thread.is_alive():
            _loop = _LoopThread()
        return _loop


def is_configured() -> bool:
    return bool(settings.LIVEKIT_URL and settings.LIVEKIT_API_KEY and settings.LIVEKIT_API_SECRET)


def _call(operation: Callable[[lk.LiveKitAPI], Awaitable[T]], *, name: str, retry_safe: bool = False) -> T:
    """Run one SDK call on the gateway loop with a bounded wait; map its failures."""
    if not is_configured():
        raise LiveKitNotConfigured()
    runner = _loop_thread()

    async def run() -> T:
        client = await runner.client()
        # livekit-api passes timeout=None per request, which disables the session's time-out,
        # so every call is bounded here.
        return await asyncio.wait_for(operation(client), settings.LIVEKIT_TIMEOUT)

    attempts = 2 if retry_safe else 1
    for attempt in range(attempts):
        future = asyncio.run_coroutine_threadsafe(run(), runner.loop)
        try:
            return future.result(timeout=settings.LIVEKIT_TIMEOUT + 1)
        except lk.TwirpError as exc:
            if exc.code == lk.TwirpErrorCode.NOT_FOUND:
                raise LiveKitNotFound(exc.message) from None
            if exc.status in (502, 503, 504) and attempt + 1 < attempts:
                continue
            if exc.status in (502, 503, 504):
                raise LiveKitUnreachable(f"LiveKit is unavailable ({exc.status}): {exc.message}") from None
            raise LiveKitFailure(exc.message, livekit_code=exc.code, livekit_status=exc.status) from None
        except (aiohttp.ClientError, TimeoutError, ConnectionError, OSError) as exc:
            future.cancel()
            if attempt + 1 < attempts:
                continue
            logger.warning("livekit unreachable", extra={"operation": name, "error": repr(exc)})
            raise LiveKitUnreachable() from None
    raise LiveKitUnreachable()  # pragma: no cover - the loop always returns or raises


def to_json(message: Message) -> dict[str, Any]:
    """A LiveKit object as the JSON a LiveKit user knows: camelCase, int64 as strings."""
    return MessageToDict(message, preserving_proto_field_name=False, always_print_fields_with_no_presence=True)


# --- Tokens -------------------------------------------------------------------------------------

ROLES = ("host", "moderator", "participant", "viewer")


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: datetime


def grants_for_role(role: str, room_name: str) -> lk.VideoGrants:
    """Document 001's role table as LiveKit grants. "Mute others" is enforced by ScaiWave's own
    moderation endpoints, not by a LiveKit grant; only the host gets roomAdmin."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    publishes = role != "viewer"
    return lk.VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=publishes,
        can_subscribe=True,
        can_publish_data=publishes,
        room_admin=True if role == "host" else None,
    )


def mint_token(
    *,
    room_name: str,
    identity: str,
    name: str = "",
    role: str = "participant",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    ttl_seconds: int | None = None,
    hidden: bool = False,
    recorder: bool = False,
) -> MintedToken:
    """A LiveKit access token for one participant. Needs only the API key and secret."""
    api_key, api_secret = settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
    if not (api_key and api_secret):
        raise LiveKitNotConfigured()
    ttl = timedelta(seconds=ttl_seconds or settings.LIVEKIT_TOKEN_TTL)
    grants = grants_for_role(role, room_name)
    if hidden:
        grants.hidden = True
    if recorder:
        grants.recorder = True
    builder = lk.AccessToken(api_key, api_secret).with_identity(identity).with_grants(grants).with_ttl(ttl)
    if name:
        builder = builder.with_name(name)
    if metadata:
        builder = builder.with_metadata(metadata)
    if attributes:
        builder = builder.with_attributes(attributes)
    now = datetime.now(UTC)
    return MintedToken(token=signed_jwt(builder, now), expires_at=now.replace(microsecond=0) + ttl)


# --- Signing -------------------------------------------------------------------------------------
#
# AccessToken.to_jwt() spends two thirds of its ~100 µs in dataclasses.asdict, which deep-copies every field of
# the claims, and in PyJWT's per-call key checks. signed_jwt() signs the same builder to the same bytes without
# them: the claims as Claims.asdict() renders them (fields in declaration order, camelCase, None and "" left out,
# roomConfig as its protobuf JSON), then sub, iss, nbf and exp, as compact JSON under PyJWT's HS256 header.
# rooms/tests/test_token_signing.py holds it to to_jwt() byte for byte, for every role and option.

_JWT_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_CAMEL_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _camel_fields(cls: type) -> tuple[tuple[str, str], ...]:
    names = _CAMEL_FIELDS.get(cls)
    if names is None:
        names = tuple((f.name, snake_to_lower_camel(f.name)) for f in dataclasses.fields(cls))
        _CAMEL_FIELDS[cls] = names
    return names


_LEAF_TYPES = frozenset({str, bool, int, float, type(None)})


def _claim_value(value: Any) -> Any:
    """dataclasses.asdict's recursion with Claims.asdict's dict factory; leaves are shared, not copied."""
    if type(value) in _LEAF_TYPES:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        rendered = {}
        for name, key in _camel_fields(type(value)):
            item = getattr(value, name)
            if type(item) not in _LEAF_TYPES:
                item = _claim_value(item)
            if item is not None and item != "":
                rendered[key] = item
        return rendered
    if isinstance(value, list | tuple):
        return type(value)(_claim_value(item) for item in value)
    if isinstance(value, dict):
        return {_claim_value(k): _claim_value(v) for k, v in value.items()}
    return value


def signed_jwt(builder: lk.AccessToken, now: datetime) -> str:
    """builder.to_jwt() with `now` as its clock."""
    claims = builder.claims
    video = claims.video
    if video and video.room_join and (not builder.identity or not video.room):
        raise ValueError("identity and room must be set when joining a room")
    payload = _claim_value(claims)
    if claims.room_config:
        payload["roomConfig"] = MessageToDict(claims.room_config)
    payload["sub"] = builder.identity
    payload["iss"] = builder.api_key
    payload["nbf"] = calendar.timegm(now.utctimetuple())
    payload["exp"] = calendar.timegm((now + builder.ttl).utctimetuple())
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
    signing_input = _JWT_HEADER + b"." + body
    signature = hmac.new(builder.api_secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


class WebhookBodyInvalid(ValueError):
    """A webhook whose signature checks out but whose body is not a LiveKit WebhookEvent."""


def verify_webhook(body: bytes, authorization: str) -> lk_webhook.WebhookEvent:
    """Check a LiveKit webhook (bare JWT in Authorization, sha256 of the exact body) and parse it.

    Raises ValueError for a missing or bad signature, and WebhookBodyInvalid (a ValueError) when the signature
    is good but the body is not a WebhookEvent: that is a malformed request, not a forgery.
    """
    if not (settings.LIVEKIT_API_KEY and settings.LIVEKIT_API_SECRET):
        raise LiveKitNotConfigured()
    # The SDK's WebhookReceiver does these same steps but raises one bare Exception for all of them.
    try:
        claims = lk.TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify(authorization)
        expected = base64.b64decode(claims.sha256 or "", validate=True)
    except Exception as exc:  # the SDK raises PyJWT errors and bare Exceptions
        raise ValueError(str(exc) or exc.__class__.__name__) from None
    if not expected:
        raise ValueError("sha256 was not found in the token")
    if not hmac.compare_digest(hashlib.sha256(body).digest(), expected):
        raise ValueError("hash mismatch")
    try:
        return Parse(body.decode("utf-8"), lk_webhook.WebhookEvent(), ignore_unknown_fields=True)
    except (UnicodeDecodeError, ParseError, RecursionError) as exc:
        raise WebhookBodyInvalid(str(exc)[:200] or "not a WebhookEvent") from None


# --- Rooms and participants ---------------------------------------------------------------------


def room_create(*, name: str, empty_timeout: int = 0, max_participants: int = 0, metadata: str = "") -> lk_models.Room:
    request = lk_room.CreateRoomRequest(
        name=name, empty_timeout=empty_timeout, max_participants=max_participants, metadata=metadata
    )
    # CreateRoom is idempotent in LiveKit (an existing room is returned), so it is safe to retry.
    return _call(lambda c: c.room.create_room(request), name="CreateRoom", retry_safe=True)


def room_proto(
    *,
    sid: str,
    name: str,
    empty_timeout: int = 0,
    max_participants: int = 0,
    creation_time: int = 0,
    creation_time_ms: int = 0,
    metadata: str = "",
    num_participants: int = 0,
) -> lk_models.Room:
    """A LiveKit Room object built from what ScaiWave knows, for a room LiveKit has not instantiated."""
    return lk_models.Room(
        sid=sid,
        name=name,
        empty_timeout=empty_timeout,
        max_participants=max_participants,
        creation_time=creation_time,
        creation_time_ms=creation_time_ms,
        metadata=metadata,
        num_participants=num_participants,
    )


def room_list(names: list[str] | None = None) -> list[lk_models.Room]:
    request = lk_room.ListRoomsRequest(names=names or [])
    response = _call(lambda c: c.room.list_rooms(request), name="ListRooms", retry_safe=True)
    return list(response.rooms)


def room_get(name: str) -> lk_models.Room | None:
    rooms = room_list([name])
    return rooms[0] if rooms else None


def room_delete(name: str) -> None:
    request = lk_room.DeleteRoomRequest(room=name)
    _call(lambda c: c.room.delete_room(request), name="DeleteRoom")


def room_update_metadata(name: str, metadata: str) -> lk_models.Room:
    request = lk_room.UpdateRoomMetadataRequest(room=name, metadata=metadata)
    return _call(lambda c: c.room.update_room_metadata(request), name="UpdateRoomMetadata")


def participant_list(room_name: str) -> list[lk_models.ParticipantInfo]:
    request = lk_room.ListParticipantsRequest(room=room_name)
    response = _call(lambda c: c.room.list_participants(request), name="ListParticipants", retry_safe=True)
    return list(response.participants)


def participant_get(room_name: str, identity: str) -> lk_models.ParticipantInfo:
    request = lk_room.RoomParticipantIdentity(room=room_name, identity=identity)
    return _call(lambda c: c.room.get_participant(request), name="GetParticipant", retry_safe=True)


def participant_remove(room_name: str, identity: str) -> None:
    request = lk_room.RoomParticipantIdentity(room=room_name, identity=identity)
    _call(lambda c: c.room.remove_participant(request), name="RemoveParticipant")


def track_mute(room_name: str, identity: str, track_sid: str, *, muted: bool = True) -> lk_models.TrackInfo:
    request = lk_room.MuteRoomTrackRequest(room=room_name, identity=identity, track_sid=track_sid, muted=muted)
    response = _call(lambda c: c.room.mute_published_track(request), name="MutePublishedTrack")
    return response.track


# --- Egress -------------------------------------------------------------------------------------


def _s3_upload() -> lk_egress.S3Upload | None:
    """Egress writes straight into ScaiWave's bucket when S3 is configured."""
    if not settings.S3_BUCKET:
        return None
    return lk_egress.S3Upload(
        access_key=settings.S3_ACCESS_KEY_ID,
        secret=settings.S3_SECRET_ACCESS_KEY,
        region=settings.S3_REGION,
        endpoint=settings.S3_ENDPOINT_URL,
        bucket=settings.S3_BUCKET,
        force_path_style=settings.S3_FORCE_PATH_STYLE,
    )


def egress_start_room_composite(
    *, room_name: str, filepath: str, audio_only: bool = False, layout: str = "speaker"
) -> lk_egress.EgressInfo:
    file_type = lk_egress.EncodedFileType.OGG if audio_only else lk_egress.EncodedFileType.MP4
    output = lk_egress.EncodedFileOutput(file_type=file_type, filepath=filepath)
    s3 = _s3_upload()
    if s3 is not None:
        output.s3.CopyFrom(s3)
    request = lk_egress.RoomCompositeEgressRequest(
        room_name=room_name, layout=layout, audio_only=audio_only, file_outputs=[output]
    )
    return _call(lambda c: c.egress.start_room_composite_egress(request), name="StartRoomCompositeEgress")


def egress_start_track(
    *, room_name: str, track_sid: str, filepath: str = "", websocket_url: str = ""
) -> lk_egress.EgressInfo:
    """One track's audio: to a file in storage, or streamed as PCM to a WebSocket (live transcription)."""
    if websocket_url:
        request = lk_egress.TrackEgressRequest(room_name=room_name, track_id=track_sid, websocket_url=websocket_url)
    else:
        output = lk_egress.DirectFileOutput(filepath=filepath)
        s3 = _s3_upload()
        if s3 is not None:
            output.s3.CopyFrom(s3)
        request = lk_egress.TrackEgressRequest(room_name=room_name, track_id=track_sid, file=output)
    return _call(lambda c: c.egress.start_track_egress(request), name="StartTrackEgress")


def egress_stop(egress_id: str) -> lk_egress.EgressInfo:
    request = lk_egress.StopEgressRequest(egress_id=egress_id)
    return _call(lambda c: c.egress.stop_egress(request), name="StopEgress")


def egress_list(*, room_name: str = "", egress_id: str = "", active: bool = False) -> list[lk_egress.EgressInfo]:
    request = lk_egress.ListEgressRequest(room_name=room_name, egress_id=egress_id, active=active)
    response = _call(lambda c: c.egress.list_egress(request), name="ListEgress", retry_safe=True)
    return list(response.items)


# --- Ingress ------------------------------------------------------------------------------------

INGRESS_TYPES = {"rtmp": lk_ingress.IngressInput.RTMP_INPUT, "whip": lk_ingress.IngressInput.WHIP_INPUT}


def ingress_create(
    *, room_name: str, input_type: str, participant_identity: str, participant_name: str, name: str = ""
) -> lk_ingress.IngressInfo:
    request = lk_ingress.CreateIngressRequest(
        input_type=INGRESS_TYPES[input_type],
        name=name or participant_name,
        room_name=room_name,
        participant_identity=participant_identity,
        participant_name=participant_name,
    )
    return _call(lambda c: c.ingress.create_ingress(request), name="CreateIngress")


def ingress_list(*, room_name: str = "", ingress_id: str = "") -> list[lk_ingress.IngressInfo]:
    request = lk_ingress.ListIngressRequest(room_name=room_name, ingress_id=ingress_id)
    response = _call(lambda c: c.ingress.list_ingress(request), name="ListIngress", retry_safe=True)
    return list(response.items)


def ingress_delete(ingress_id: str) -> lk_ingress.IngressInfo:
    request = lk_ingress.DeleteIngressRequest(ingress_id=ingress_id)
    return _call(lambda c: c.ingress.delete_ingress(request), name="DeleteIngress")
