"""Real processes for the fault-injection tests and the load bench: a private PostgreSQL cluster, a private
Redis, ScaiWave under uvicorn, Celery worker and beat, all on 127.0.0.1 free ports.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): the tests stop and restart
their own instances. Every process is started in its own session and killed on `close()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from livekit_emulator.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
# The stack's one worker consumes every queue (settings.WORKER_QUEUES).
WORKER_QUEUES_ARG = "calls,webhooks,default,transcription"
VENV_BIN = Path(sys.executable).parent


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql")
    return candidates[-1].parent


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb/pg_ctl refuse to run as root: run them as the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) in a temp dir, on a free port."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="scaiwave-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"]),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/scaiwave"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]), check=True,
                       capture_output=True, timeout=60)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._ctl("-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def create_database(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                                     "postgres", "scaiwave"]), check=True, capture_output=True)  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free port, no persistence; stop() and start() keep the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no"]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
        wait_until(self._pong, 10, what="redis PONG")

    def _pong(self) -> bool:
        result = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    close = stop


class ManagedProcess:
    """A child in its own session, output to a log file; kill() sends SIGKILL to the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        """The process and its descendants (for RSS measurements)."""
        pids = [self.process.pid]
        result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        pids += [int(p) for p in result.stdout.split()]
        return pids


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class Stack:
    """PostgreSQL + Redis (private) + uvicorn + Celery worker (+ beat) with the production settings."""

    def __init__(self, *, livekit_url: str, livekit_key: str, livekit_secret: str, workers: int = 1,
                 extra_env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.pg = PrivatePostgres()
        self.redis = PrivateRedis()
        self.dir = Path(tempfile.mkdtemp(prefix="scaiwave-faults-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
        self.env.update(
            {
                "SCAIWAVE_MODE": "production",
                "SECRET_KEY": "faults-" + "x" * 50,
                "SECURE_SSL_REDIRECT": "false",
                "SESSION_COOKIE_SECURE": "false",
                "CSRF_COOKIE_SECURE": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PUBLIC_BASE_URL": self.base_url,
                "DATABASE_URL": self.pg.url,
                "REDIS_URL": self.redis.url,
                "DATA_DIR": str(self.dir / "data"),
                "MEDIA_ROOT": str(self.dir / "media"),
                "LIVEKIT_URL": livekit_url,
                "LIVEKIT_API_KEY": livekit_key,
                "LIVEKIT_API_SECRET": livekit_secret,
                "LIVEKIT_TIMEOUT": "2",
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "WEBHOOK_SWEEP_INTERVAL": "1",
                "WEBHOOK_SEND_LEASE_SECONDS": "3",
                "WEBHOOK_REQUEUE_AFTER": "3",
                "WEBHOOK_TIMEOUT": "30",
                "WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1",
                "OUTBOX_REDISPATCH_INTERVAL": "1",
                "OUTBOX_REDISPATCH_AGE": "1",
                "TRANSCRIPTION_LIVE_ENABLED": "false",
                "STT_MODEL": "tiny.en",
                "ANALYSIS_STUCK_AFTER": "60",  # the smallest allowed: a killed analysis is requeued after a minute
                "ANALYSIS_STUCK_SWEEP_INTERVAL": "5",
                "TRANSCRIPTION_STUCK_AFTER": "60",  # the smallest allowed, as for analysis
                "TRANSCRIPTION_STUCK_SWEEP_INTERVAL": "5",
                "RECORDING_RECONCILE_AGE": "2",
                "RECORDING_RECONCILE_INTERVAL": "2",
                "DJANGO_SETTINGS_MODULE": "scaiwave.settings",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(extra_env or {})
        self.web: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None
        self.beat: ManagedProcess | None = None
        self.creds: dict[str, Any] = {}

    # lifecycle
    def start(self) -> Stack:
        self.pg.start()
        self.pg.create_database()
        self.redis.start()
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        self.creds = json.loads(self.manage("bootstrap", "--json", "--tenant", "faults").strip().splitlines()[-1])
        self.start_web()
        self.start_worker()
        self.start_beat()
        return self

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=300)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> str:
        """Run Python inside Django (a fresh process) and return its stdout."""
        return self.manage("shell", "-c", code)

    def start_web(self) -> None:
        argv = [str(VENV_BIN / "uvicorn"), "scaiwave.asgi:application", "--host", "127.0.0.1", "--port",
                str(self.port), "--workers", str(self.workers), "--no-access-log", "--lifespan", "off"]  # fmt: skip
        self.web = ManagedProcess("web", argv, self.env, self.dir)
        wait_until(self._healthy, 60, what="uvicorn /healthz")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, *, failpoints: tuple[str, ...] = ()) -> ManagedProcess:
        """Start the worker; `failpoints` (scaiwave/failpoints.py) make it halt at those points."""
        argv = [str(VENV_BIN / "celery"), "-A", "scaiwave", "worker", "-Q", WORKER_QUEUES_ARG, "-c", "1",
                "--pool", "prefork", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-n", f"faults-{time.monotonic_ns()}@%h"]  # fmt: skip
        env = {**self.env, "SCAIWAVE_FAILPOINTS": ",".join(failpoints)}
        self.worker = ManagedProcess("worker", argv, env, self.dir)
        wait_until(lambda: "ready." in self.worker.output() if self.worker else False, 60, what="celery ready")
        return self.worker

    def start_beat(self) -> None:
        argv = [str(VENV_BIN / "celery"), "-A", "scaiwave", "beat", "-l", "info", "-s",
                str(self.dir / "celerybeat-schedule")]  # fmt: skip
        self.beat = ManagedProcess("beat", argv, self.env, self.dir)

    def close(self) -> None:
        for proc in (self.beat, self.worker, self.web):
            if proc is not None:
                proc.kill() if proc.alive() else None
        self.redis.close()
        self.pg.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # HTTP
    def failpoint_reached(self, name: str) -> bool:
        return (self.dir / "data" / "failpoints" / name).exists()

    def client(self, timeout: float = 15) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"X-API-Key": self.creds["api_secret"]}, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.output()[-4000:]}" for p in (self.web, self.worker, self.beat) if p is not None
        )
