"""The aiohttp application: Twirp endpoints, the health check and the emulator's own control API."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth import AuthLayerError, bearer_token, verify_token
from .config import EmulatorConfig
from .control import add_control_routes
from .core import Emulator
from .egress import EgressManager
from .ingress import IngressManager
from .rpc import build_routes
from .rtc import configure_ice_addresses
from .signal import RtcHub
from .twirp import TwirpError, bad_route, content_kind, decode_request, encode_response

log = logging.getLogger("livekit_emulator")

EMULATOR_KEY = web.AppKey("emulator", Emulator)
MAX_BODY = 10 * 1024 * 1024
TWIRP_PREFIX = "/twirp/"


@dataclass
class TwirpFaults:
    """Failure switch for the Twirp endpoints only: ok, unreachable, slow or error (503 unavailable)."""

    mode: str = "ok"
    slow_seconds: float = 3.0

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "slow_seconds": self.slow_seconds}


FAULTS_KEY = web.AppKey("twirp_faults", TwirpFaults)


def _plain_401(message: str) -> web.Response:
    return web.Response(status=401, text=message + "\n", content_type="text/plain")


CORS_METHODS = "OPTIONS, HEAD, GET, POST, PATCH, DELETE"


@web.middleware
async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
    """CORS for every origin, as livekit-server allows it (rs/cors; tokens, not origins, guard the API).

    A browser needs it for /rtc/validate: livekit-client fetches it from the page's origin after a failed connect
    and treats a blocked fetch as "server unreachable"."""
    origin = request.headers.get("Origin")
    if origin and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Max-Age": "86400",
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        }
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    if origin and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "*"
        response.headers.add("Vary", "Origin")
    return response


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def twirp_handler(request: web.Request) -> web.StreamResponse:
    faults = request.app[FAULTS_KEY]
    if faults.mode == "unreachable":
        # Drop the TCP connection without answering: the client sees a connection error, as with a dead server.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()
    if faults.mode == "slow":
        await asyncio.sleep(faults.slow_seconds)
    if faults.mode == "error":
        return TwirpError("unavailable", "service unavailable (emulated fault)").to_response()

    emulator = request.app[EMULATOR_KEY]
    # The auth middleware runs before routing, so a bad token wins over a bad route (livekit-server auth.go).
    try:
        token = bearer_token(request.headers.get("Authorization"), request.query.get("access_token"))
        grants = verify_token(token, emulator.config.keys) if token else None
    except AuthLayerError as exc:
        return _plain_401(str(exc))

    path = request.path
    if request.method != "POST":
        return bad_route(request.method, path).to_response()
    service, _, method = path[len(TWIRP_PREFIX) :].partition("/")
    rpc = request.app[ROUTES_KEY].get(service, {}).get(method)
    if rpc is None or "/" in method:
        return bad_route(request.method, path).to_response()
    kind = content_kind(request.headers.get("Content-Type", ""))
    if kind is None:
        return bad_route(
            request.method, path, f"unexpected Content-Type: {request.headers.get('Content-Type', '')!r}"
        ).to_response()
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.Response(status=413, text="request entity too large\n", content_type="text/plain")
    body = await request.read()
    try:
        message = rpc.request_type()
        decode_request(kind, body, message)
        reply = await rpc.handler(grants, message)
    except TwirpError as exc:
        return exc.to_response()
    except Exception as exc:  # an emulator bug must still look like a server error, not a dropped connection
        log.exception("RPC %s/%s failed", service, method)
        return TwirpError("internal", f"emulator error: {exc}").to_response()
    return encode_response(kind, reply)


ROUTES_KEY = web.AppKey("twirp_routes", dict)


async def unknown_route(request: web.Request) -> web.Response:
    return bad_route(request.method, request.path).to_response()


def build_app(config: EmulatorConfig | None = None) -> web.Application:
    """Create the emulator's aiohttp application for ``config`` (read from the environment when None)."""
    config = config or EmulatorConfig.from_env()
    emulator = Emulator(config)
    emulator.egress = EgressManager(emulator)
    emulator.ingress = IngressManager(emulator)
    emulator.rtc = RtcHub(emulator)
    configure_ice_addresses(config.ice_addresses)
    app = web.Application(client_max_size=MAX_BODY + 1, middlewares=[cors])
    app[EMULATOR_KEY] = emulator
    app[FAULTS_KEY] = TwirpFaults()
    app[ROUTES_KEY] = build_routes(emulator)
    app.router.add_get("/", health)
    add_control_routes(app, emulator, app[FAULTS_KEY])
    app.router.add_get("/rtc", emulator.rtc.connect)
    app.router.add_get("/rtc/validate", emulator.rtc.validate)
    app.router.add_route("*", "/rtc/v1", emulator.rtc.not_found)
    app.router.add_route("*", "/rtc/v1/validate", emulator.rtc.not_found)
    app.router.add_route("*", TWIRP_PREFIX + "{tail:.*}", twirp_handler)
    app.router.add_route("*", "/{tail:.*}", unknown_route)

    async def on_cleanup(app: web.Application) -> None:
        await emulator.close()

    app.on_cleanup.append(on_cleanup)
    return app
