"""The emulator's control API under ``/emulator/`` — NOT part of LiveKit's protocol.

It stands in for what media clients would do (join with a token, publish a track, drop a connection), lets tests
inspect all state, and switches faults on and off. Requests and responses are JSON; errors are
``{"error": "<message>", "code": "<code>"}`` with a matching HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from livekit.protocol import models

from .auth import AuthLayerError, verify_token
from .core import Emulator, EmulatorError
from .ingress import prepare_audio
from .twirp import TwirpError, message_to_snake_dict

if TYPE_CHECKING:
    from .server import TwirpFaults

FAULT_MODES = ("ok", "unreachable", "slow", "error")

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Parse the JSON body, run the handler, render its result or its error."""

    async def wrapped(request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    return _json({"error": "body is not valid JSON", "code": "invalid_argument"}, 400)
                if not isinstance(parsed, dict):
                    return _json({"error": "body must be a JSON object", "code": "invalid_argument"}, 400)
                body = parsed
        try:
            return _json(await handler(request, body))
        except EmulatorError as exc:
            return _json({"error": exc.message, "code": exc.code}, exc.status)
        except TwirpError as exc:
            return _json({"error": exc.msg, "code": exc.code}, exc.status)

    return wrapped


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise EmulatorError(400, "invalid_argument", f"{name!r} is required and must be a string")
    return value


def add_control_routes(app: web.Application, emulator: Emulator, faults: TwirpFaults) -> None:
    def participant_view(room_name: str, info: models.ParticipantInfo) -> dict[str, Any]:
        return {
            "sid": info.sid,
            "identity": info.identity,
            "room": room_name,
            "participant": message_to_snake_dict(info),
        }

    async def connect(request: web.Request, body: dict[str, Any]) -> Any:
        token = _text(body, "token")
        try:
            grants = verify_token(token, emulator.config.keys)
        except AuthLayerError as exc:
            raise EmulatorError(401, "unauthenticated", str(exc)) from exc
        room, participant = emulator.participant_join_with_grants(grants)
        view = participant_view(room.name, participant.to_proto())
        view["room_sid"] = room.info.sid
        return view

    def locate(body: dict[str, Any]) -> tuple[Any, Any]:
        room = emulator.room_require(_text(body, "room"))
        return room, emulator.participant_require(room, _text(body, "identity"))

    async def publish(request: web.Request, body: dict[str, Any]) -> Any:
        room, participant = locate(body)
        kind = str(body.get("kind", "audio"))
        source = str(body.get("source") or ("microphone" if kind == "audio" else "camera"))
        delay = float(body.get("delay_seconds", 0) or 0)
        if kind == "audio" and (body.get("file") or body.get("tone")):
            # Check permission before the (slow) decode so a refused publish costs nothing.
            permission = participant.info.permission
            if not permission.can_publish:
                raise EmulatorError(403, "permission_denied", "participant does not have permission to publish")
            pcm, length = await prepare_audio(emulator, body)
        else:
            pcm, length = None, 0.0
        room = emulator.room_require(room.name)
        participant = emulator.participant_require(room, participant.identity)
        track = emulator.track_publish(
            room,
            participant,
            kind=kind,
            source=source,
            name=str(body.get("name") or ""),
            pcm=pcm,
            audio_length=length,
            delay=delay,
            unpublish_on_end=bool(body.get("unpublish_on_end", True)),
        )
        return {"sid": track.info.sid, "duration": length, "track": message_to_snake_dict(track.info)}

    async def unpublish(request: web.Request, body: dict[str, Any]) -> Any:
        room, participant = locate(body)
        track = participant.tracks.get(_text(body, "track_sid"))
        if track is None:
            raise EmulatorError(404, "not_found", "track is not published")
        emulator.track_unpublish(room, participant, track)
        return {"sid": track.info.sid, "unpublished": True}

    async def mute(request: web.Request, body: dict[str, Any]) -> Any:
        _, participant = locate(body)
        track = participant.tracks.get(_text(body, "track_sid"))
        if track is None:
            raise EmulatorError(404, "not_found", "track is not published")
        emulator.track_set_muted(track, bool(body.get("muted", True)))
        return {"sid": track.info.sid, "muted": track.info.muted}

    async def disconnect(request: web.Request, body: dict[str, Any]) -> Any:
        room, participant = locate(body)
        emulator.participant_leave(room, participant, models.DisconnectReason.CLIENT_INITIATED)
        return participant_view(room.name, participant.to_proto())

    async def drop(request: web.Request, body: dict[str, Any]) -> Any:
        room, participant = locate(body)
        reason_name = str(body.get("reason") or "SIGNAL_CLOSE").upper()
        if reason_name not in models.DisconnectReason.DESCRIPTOR.values_by_name:
            raise EmulatorError(400, "invalid_argument", f"unknown disconnect reason {reason_name!r}")
        emulator.participant_leave(room, participant, models.DisconnectReason.Value(reason_name))
        return participant_view(room.name, participant.to_proto())

    async def ingress_publish(request: web.Request, body: dict[str, Any]) -> Any:
        info = await emulator.ingress.publish(request.match_info["ingress_id"], body)
        return message_to_snake_dict(info)

    async def ingress_unpublish(request: web.Request, body: dict[str, Any]) -> Any:
        info = emulator.ingress.unpublish(request.match_info["ingress_id"], str(body.get("error") or ""))
        return message_to_snake_dict(info)

    async def egress_fail(request: web.Request, body: dict[str, Any]) -> Any:
        info = emulator.egress.force_fail(request.match_info["egress_id"], str(body.get("error") or ""))
        return message_to_snake_dict(info)

    async def egress_limit(request: web.Request, body: dict[str, Any]) -> Any:
        return message_to_snake_dict(emulator.egress.force_limit(request.match_info["egress_id"]))

    def faults_view() -> dict[str, Any]:
        return {
            **faults.as_dict(),
            "webhook": emulator.webhooks.faults.as_dict(),
            "egress_fail": emulator.egress.fail_new,
            "storage_fail": emulator.egress.fail_storage,
        }

    async def set_faults(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return faults_view()
        if "mode" in body:
            if body["mode"] not in FAULT_MODES:
                raise EmulatorError(400, "invalid_argument", f"mode must be one of {', '.join(FAULT_MODES)}")
            faults.mode = body["mode"]
        if "slow_seconds" in body:
            faults.slow_seconds = float(body["slow_seconds"])
        webhook = body.get("webhook")
        if isinstance(webhook, dict):
            settings = emulator.webhooks.faults
            settings.duplicate = int(webhook.get("duplicate", settings.duplicate))
            settings.delay_ms = int(webhook.get("delay_ms", settings.delay_ms))
            settings.reorder = bool(webhook.get("reorder", settings.reorder))
            settings.reorder_window_ms = int(webhook.get("reorder_window_ms", settings.reorder_window_ms))
            settings.drop_rate = min(1.0, max(0.0, float(webhook.get("drop_rate", settings.drop_rate))))
        if "egress_fail" in body:
            emulator.egress.fail_new = bool(body["egress_fail"])
        if "storage_fail" in body:
            emulator.egress.fail_storage = bool(body["storage_fail"])
        return faults_view()

    def config_view() -> dict[str, Any]:
        config = emulator.config
        return {
            "api_keys": list(config.keys),
            "webhook_urls": list(config.webhook_urls),
            "speed": emulator.clock.speed,
            "file_output_dir": str(config.file_output_dir.resolve()),
            "empty_timeout": config.empty_timeout,
            "departure_timeout": config.departure_timeout,
            "egress_start_delay": config.egress_start_delay,
            "webhook_retry_base": config.webhook_retry_base,
            "webhook_max_age": config.webhook_max_age,
            "webhook_max_depth": config.webhook_max_depth,
            "rtmp_base_url": config.rtmp_base_url,
            "whip_base_url": config.whip_base_url,
        }

    async def set_config(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return config_view()
        config = emulator.config
        if "webhook_urls" in body:
            urls = body["webhook_urls"]
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise EmulatorError(400, "invalid_argument", "webhook_urls must be a list of strings")
            config.webhook_urls = list(urls)
        if "speed" in body:
            speed = float(body["speed"])
            if speed <= 0:
                raise EmulatorError(400, "invalid_argument", "speed must be > 0")
            emulator.clock.set_speed(speed)
            config.speed = speed
        for name in ("empty_timeout", "departure_timeout", "webhook_max_depth"):
            if name in body:
                setattr(config, name, int(body[name]))
        for name in ("egress_start_delay", "webhook_retry_base", "webhook_max_age"):
            if name in body:
                setattr(config, name, float(body[name]))
        return config_view()

    async def state(request: web.Request, body: dict[str, Any]) -> Any:
        rooms = []
        for room in emulator.all_rooms():
            rooms.append(
                {
                    **message_to_snake_dict(room.to_proto()),
                    "participants": [message_to_snake_dict(p.to_proto()) for p in room.participants.values()],
                    "data_packets": list(room.data_packets),
                }
            )
        return {
            "rooms": rooms,
            "egress": [message_to_snake_dict(job.info) for job in emulator.egress.snapshot()],
            "ingress": [message_to_snake_dict(info) for info in emulator.ingress.items.values()],
            "webhooks": emulator.webhooks.snapshot(),
            "faults": faults_view(),
            "config": config_view(),
            "media_time": emulator.clock.now(),
        }

    async def reset(request: web.Request, body: dict[str, Any]) -> Any:
        await emulator.reset()
        faults.mode, faults.slow_seconds = "ok", 3.0
        return {"reset": True}

    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/emulator/connect", connect),
        ("POST", "/emulator/publish", publish),
        ("POST", "/emulator/unpublish", unpublish),
        ("POST", "/emulator/mute", mute),
        ("POST", "/emulator/disconnect", disconnect),
        ("POST", "/emulator/drop", drop),
        ("POST", "/emulator/ingress/{ingress_id}/publish", ingress_publish),
        ("POST", "/emulator/ingress/{ingress_id}/unpublish", ingress_unpublish),
        ("POST", "/emulator/egress/{egress_id}/fail", egress_fail),
        ("POST", "/emulator/egress/{egress_id}/limit", egress_limit),
        ("GET", "/emulator/faults", set_faults),
        ("POST", "/emulator/faults", set_faults),
        ("GET", "/emulator/config", set_config),
        ("POST", "/emulator/config", set_config),
        ("GET", "/emulator/state", state),
        ("POST", "/emulator/reset", reset),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _endpoint(handler))
