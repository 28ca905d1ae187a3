"""``python -m livekit_emulator``: serve the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import warnings

from aiohttp import web

from .config import ConfigError, EmulatorConfig
from .server import build_app


async def serve(config: EmulatorConfig) -> None:
    app = build_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    logging.getLogger("livekit_emulator").info(
        "LiveKit emulator listening on http://%s:%s (keys: %s)", config.host, config.port, ", ".join(config.keys)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("EMULATOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The dev secret "secret" is shorter than PyJWT likes; LiveKit accepts it, and so do we.
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    try:
        config = EmulatorConfig.from_env()
    except ConfigError as exc:
        print(f"livekit_emulator: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
