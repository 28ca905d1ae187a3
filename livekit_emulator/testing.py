"""Test helpers: run the emulator as a real subprocess and drive its control API.

Typical use (pytest)::

    from livekit_emulator.testing import EmulatorProcess

    @pytest.fixture(scope="session")
    def livekit_emulator():
        with EmulatorProcess(env={"EMULATOR_SPEED": "4"}) as emulator:
            yield emulator

    def test_something(livekit_emulator):
        token = livekit_emulator.token("alice", "room-1")          # a LiveKit join token
        livekit_emulator.control.connect(token)                     # alice joins (participant_joined)
        livekit_emulator.control.publish("room-1", "alice", tone={"frequency": 440, "seconds": 1})
        # ... point livekit.api.LiveKitAPI at livekit_emulator.url with .api_key / .api_secret

``EmulatorProcess(env=None, *, api_key="devkey", api_secret="secret", startup_timeout=20.0)`` starts
``python -m livekit_emulator`` on a free 127.0.0.1 port (``env`` is added to the current environment; its
``EMULATOR_PORT``/``EMULATOR_HOST`` are ignored), waits until ``GET /`` answers, and stops it on exit. Attributes:
``url`` (``http://127.0.0.1:<port>``), ``ws_url``, ``port``, ``api_key``, ``api_secret``, ``output_dir`` (local egress
files), ``control`` (an :class:`EmulatorControl`), ``token(identity, room, **grants)`` and ``logs()``.

:class:`EmulatorControl` is a small synchronous httpx client for the ``/emulator/*`` API (not part of LiveKit's
protocol); every method returns the decoded JSON answer or raises :class:`EmulatorControlError`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

TERMINAL_EGRESS = ("EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED")


class EmulatorControlError(RuntimeError):
    """The control API answered with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorControl:
    """Synchronous client for the emulator's ``/emulator/*`` control API."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._client.request(method, path, json=body if method == "POST" else None)
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text, "code": "unknown"}
        if response.status_code >= 400:
            raise EmulatorControlError(response.status_code, data.get("code", "unknown"), data.get("error", ""))
        return data

    # participants and tracks
    def connect(self, token: str) -> dict[str, Any]:
        """Join with a LiveKit access token; returns ``{"sid", "identity", "room", "room_sid", "participant"}``."""
        return dict(self._call("POST", "/emulator/connect", {"token": token}))

    def publish(
        self,
        room: str,
        identity: str,
        *,
        kind: str = "audio",
        source: str | None = None,
        file: str | os.PathLike[str] | None = None,
        tone: dict[str, float] | None = None,
        delay_seconds: float = 0.0,
        unpublish_on_end: bool = True,
        name: str = "",
    ) -> dict[str, Any]:
        """Publish a track; returns ``{"sid", "duration", "track"}``. Audio comes from ``file`` or ``tone``
        (``{"frequency": 440, "seconds": 3}``); without either it is a silent live track."""
        body: dict[str, Any] = {
            "room": room,
            "identity": identity,
            "kind": kind,
            "delay_seconds": delay_seconds,
            "unpublish_on_end": unpublish_on_end,
            "name": name,
        }
        if source:
            body["source"] = source
        if file is not None:
            body["file"] = str(file)
        if tone is not None:
            body["tone"] = tone
        return dict(self._call("POST", "/emulator/publish", body))

    def unpublish(self, room: str, identity: str, track_sid: str) -> dict[str, Any]:
        return dict(
            self._call("POST", "/emulator/unpublish", {"room": room, "identity": identity, "track_sid": track_sid})
        )

    def mute(self, room: str, identity: str, track_sid: str, muted: bool = True) -> dict[str, Any]:
        body = {"room": room, "identity": identity, "track_sid": track_sid, "muted": muted}
        return dict(self._call("POST", "/emulator/mute", body))

    def disconnect(self, room: str, identity: str) -> dict[str, Any]:
        return dict(self._call("POST", "/emulator/disconnect", {"room": room, "identity": identity}))

    def drop(self, room: str, identity: str, reason: str = "SIGNAL_CLOSE") -> dict[str, Any]:
        return dict(self._call("POST", "/emulator/drop", {"room": room, "identity": identity, "reason": reason}))

    # ingress and egress
    def ingress_publish(
        self, ingress_id: str, *, file: str | None = None, tone: dict[str, float] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if file:
            body["file"] = file
        if tone:
            body["tone"] = tone
        return dict(self._call("POST", f"/emulator/ingress/{ingress_id}/publish", body))

    def ingress_unpublish(self, ingress_id: str, error: str = "") -> dict[str, Any]:
        return dict(self._call("POST", f"/emulator/ingress/{ingress_id}/unpublish", {"error": error}))

    def egress_fail(self, egress_id: str, error: str = "egress failed (emulated)") -> dict[str, Any]:
        return dict(self._call("POST", f"/emulator/egress/{egress_id}/fail", {"error": error}))

    def egress_limit(self, egress_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/emulator/egress/{egress_id}/limit", {}))

    # switches and inspection
    def faults(self, **settings: Any) -> dict[str, Any]:
        """Set fault switches, e.g. ``faults(mode="unreachable")`` or ``faults(webhook={"duplicate": 1})``."""
        return dict(self._call("POST", "/emulator/faults", settings))

    def config(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings, e.g. ``config(webhook_urls=[...], speed=4.0)``."""
        return dict(self._call("POST", "/emulator/config", settings))

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/emulator/state"))

    def reset(self) -> dict[str, Any]:
        """Forget all rooms, egress, ingress and queued webhooks; switch every fault off."""
        return dict(self._call("POST", "/emulator/reset", {}))

    def egress(self, egress_id: str) -> dict[str, Any]:
        """The stored EgressInfo (snake_case JSON) of one egress."""
        for item in self.state()["egress"]:
            if item["egress_id"] == egress_id:
                return dict(item)
        raise EmulatorControlError(404, "not_found", f"egress {egress_id} not found")

    def wait_for_egress(
        self, egress_id: str, statuses: tuple[str, ...] = TERMINAL_EGRESS, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Poll until the egress reaches one of ``statuses``; returns its info. Raises TimeoutError.

        A terminal status counts only once ``ended_at`` is set: LIMIT_REACHED is shown while the file is still
        being finalized, as LiveKit does."""

        def reached() -> dict[str, Any] | None:
            info = self.egress(egress_id)
            if info["status"] not in statuses:
                return None
            if info["status"] in TERMINAL_EGRESS and int(info["ended_at"]) == 0:
                return None
            return info

        return wait_until(reached, timeout)

    def close(self) -> None:
        self._client.close()


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call ``predicate`` until it returns something truthy (returned); raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class EmulatorProcess:
    """``python -m livekit_emulator`` in a subprocess on a free port; a context manager."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        api_key: str = "devkey",
        api_secret: str = "secret",  # noqa: S107 - LiveKit dev mode secret
        startup_timeout: float = 20.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self._tmp = Path(tempfile.mkdtemp(prefix="livekit-emulator-test-"))
        self._env = dict(env or {})
        self.output_dir = Path(self._env.get("EMULATOR_FILE_OUTPUT_DIR") or self._tmp / "media")
        self._log_path = self._tmp / "emulator.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.control = EmulatorControl(self.url)

    def start(self) -> EmulatorProcess:
        env = {**os.environ, **self._env}
        env.update(
            {
                "EMULATOR_HOST": "127.0.0.1",
                "EMULATOR_PORT": str(self.port),
                "EMULATOR_FILE_OUTPUT_DIR": str(self.output_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if "EMULATOR_KEYS" not in self._env:
            env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"] = self.api_key, self.api_secret
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        log = open(self._log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self._process = subprocess.Popen(
            [sys.executable, "-m", "livekit_emulator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"emulator exited with {self._process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"emulator did not answer within {self.startup_timeout} s:\n{self.logs()}")

    @property
    def pid(self) -> int:
        """The emulator process's id (for benchmarks that read its CPU time)."""
        if self._process is None:
            raise RuntimeError("the emulator is not running")
        return self._process.pid

    def stop(self) -> None:
        self.control.close()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def logs(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def token(
        self,
        identity: str,
        room: str,
        *,
        ttl_seconds: int = 3600,
        name: str = "",
        metadata: str = "",
        kind: str = "",
        **grants: Any,
    ) -> str:
        """A join token for ``identity`` in ``room``; ``grants`` are VideoGrants fields (snake_case)."""
        from livekit import api

        video = api.VideoGrants(room_join=True, room=room, **grants)
        builder = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_grants(video)
            .with_ttl(dt.timedelta(seconds=ttl_seconds))
        )
        if name:
            builder = builder.with_name(name)
        if metadata:
            builder = builder.with_metadata(metadata)
        if kind:
            builder = builder.with_kind(kind)  # type: ignore[arg-type]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyJWT dislikes the short dev secret
            return builder.to_jwt()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.cleanup()
