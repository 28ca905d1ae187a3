"""`make run`: web (ASGI), Celery worker and beat, and the LiveKit emulator, in the foreground.

Ctrl-C (or SIGTERM) stops every process cleanly; if one process dies, the others are
stopped too so nothing is left half-running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def worker_commands(python: str) -> dict[str, list[str]]:
    """The Celery workers of `make run`, together consuming every queue of WORKER_QUEUES (settings).

    Ringing and call state share a worker with the light bookkeeping of `default`, never with webhook
    deliveries (a backlog of dead endpoints delayed ring time-outs) nor with speech-to-text. Three worker
    processes in all keeps the embedded install's memory modest; production runs one worker set per queue.
    """

    def worker(name: str, queues: str, concurrency: int) -> list[str]:
        return [python, "-m", "celery", "-A", "scaiwave", "worker", "-n", f"{name}@%h", "-Q", queues,
                "--concurrency", str(concurrency), "--loglevel", "INFO"]  # fmt: skip

    return {
        "worker": worker("calls", "calls,default", 2),
        "webhooks-worker": worker("webhooks", "webhooks", 2),
        # One process holds one speech model in memory; a long transcription delays nothing else.
        "transcription-worker": worker("transcription", "transcription", 1),
    }


class Command(BaseCommand):
    help = "Run web, worker, beat and (unless LIVEKIT_URL is set) the LiveKit emulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(urlparse(settings.PUBLIC_BASE_URL).port or 8000))
        parser.add_argument("--web-workers", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        out = StringIO()
        call_command("bootstrap", "--json", stdout=out)
        credentials = json.loads(out.getvalue())
        python = sys.executable
        env = dict(os.environ)
        commands: dict[str, list[str]] = {}
        if settings.LIVEKIT_USES_EMULATOR:
            env.update(
                {
                    "EMULATOR_HOST": "127.0.0.1",
                    "EMULATOR_PORT": str(settings.LIVEKIT_EMULATOR_PORT),
                    "EMULATOR_WEBHOOK_URLS": env.get("EMULATOR_WEBHOOK_URLS", f"http://{host}:{port}/v1/calls/webhook"),
                    "EMULATOR_FILE_OUTPUT_DIR": str(settings.MEDIA_ROOT),
                    "LIVEKIT_API_KEY": settings.LIVEKIT_API_KEY,
                    "LIVEKIT_API_SECRET": settings.LIVEKIT_API_SECRET,
                }
            )
            commands["livekit-emulator"] = [python, "-m", "livekit_emulator"]
        commands["web"] = [
            python, "-m", "uvicorn", "scaiwave.asgi:application",
            "--host", host, "--port", str(port), "--workers", str(options["web_workers"]),
            "--no-access-log", "--lifespan", "off",
        ]  # fmt: skip
        commands.update(worker_commands(python))
        commands["beat"] = [
            python, "-m", "celery", "-A", "scaiwave", "beat",
            "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME, "--loglevel", "INFO",
        ]  # fmt: skip

        children: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # Each child gets its own process group so a terminal's Ctrl-C reaches only us;
            # we then stop the children in order.
            children[name] = subprocess.Popen(command, env=env, start_new_session=True)
            self.stdout.write(f"started {name} (pid {children[name].pid})")

        base = f"http://{host}:{port}"
        self.stdout.write(
            "\nScaiWave is starting on "
            f"{base}\n  docs:        {base}/v1/docs\n  admin:       {base}/admin/ "
            "(create a login with: .venv/bin/python manage.py createsuperuser)\n"
            f"  tenant:      {credentials['tenant']}\n  api_key:     {credentials['api_key']}\n"
            f"  api_secret:  {credentials['api_secret']}   (send as X-API-Key)\n"
            f"  livekit:     {credentials['livekit_url']}\nPress Ctrl-C to stop.\n"
        )
        exit_code = 0
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping the rest")
                        exit_code = 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            self._stop_all(children)
        self.stdout.write("ScaiWave stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _stop_all(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        # SIGTERM to each main process only: Celery and uvicorn then stop their own children.
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, child in children.items():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
