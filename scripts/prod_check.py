"""`make prod-check`: docker-compose.yml's topology, started as local processes in production mode, behind a
local TLS front, then an end-to-end scenario through the public HTTPS URL only.

The topology is read from the compose file (`docker-compose config`), not restated: every ScaiWave service runs
its own command with its own environment, where only the compose network's names are replaced by local
addresses (postgres, redis, minio, livekit, web). Stand-ins, each configured from the compose file: the local
PostgreSQL and Redis (a database of their own), moto's S3 server for MinIO, the built-in LiveKit emulator for
LiveKit and egress (keys and webhook URL from the rendered deploy/livekit.yaml), Debian's caddy with
deploy/Caddyfile and a throwaway local CA. Two web processes sit behind the front.

Exits non-zero on the first unexpected status. Environment: PROD_CHECK_DATABASE (default scaiwave_prodcheck),
PROD_CHECK_REDIS_DB (default 15).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import redis
import websockets
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Human speech from Debian's pocketsphinx-testdata (scripts/system-packages.sh), published into the call.
SPEECH = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
sys.path.insert(0, str(ROOT))  # the scenario reads scaiwave's version and drives the emulator's control API
import scaiwave  # noqa: E402
from livekit_emulator.testing import EmulatorControl  # noqa: E402

PYTHON = sys.executable
SECRETS = {
    "SECRET_KEY": "prod-check-secret-key-not-for-any-real-deployment-0123456789",
    "POSTGRES_PASSWORD": "unused-locally",
    "MINIO_ROOT_PASSWORD": "prod-check-minio-secret",
    "LIVEKIT_API_SECRET": "prod-check-livekit-secret-at-least-32-characters",
    "TURN_PASSWORD": "prod-check-turn",
    "PUBLIC_IP": "127.0.0.1",
    "TURN_DOMAIN": "localhost",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        time.sleep(0.3)
    raise SystemExit(f"prod-check: timed out waiting for {what}")


class Topology:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="scaiwave-prod-check-"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports = {name: free_port() for name in ("front_app", "front_livekit", "front_files", "moto", "livekit")}
        self.web_ports = [free_port(), free_port()]
        self.database = os.environ.get("PROD_CHECK_DATABASE", "scaiwave_prodcheck")
        self.redis_db = os.environ.get("PROD_CHECK_REDIS_DB", "15")
        env = {
            **SECRETS,
            "SCAIWAVE_DOMAIN": f"localhost:{self.ports['front_app']}",
            "LIVEKIT_DOMAIN": f"localhost:{self.ports['front_livekit']}",
            "FILES_DOMAIN": f"localhost:{self.ports['front_files']}",
        }
        self.env_file = self.work / "compose.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.services = self._compose_services()

    # --- reading the compose file -----------------------------------------------------------------
    def _compose_services(self) -> dict[str, dict[str, Any]]:
        result = subprocess.run(
            ["docker-compose", "--env-file", str(self.env_file), "--profile", "stt-post", "config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"prod-check: docker-compose config failed:\n{result.stderr}")
        services: dict[str, dict[str, Any]] = yaml.safe_load(result.stdout)["services"]
        return services

    def local(self, value: str) -> str:
        """A compose-network address made local."""
        value = re.sub(
            r"postgres://[^@]+@postgres:5432/\w+", f"postgres://postgres@127.0.0.1:5432/{self.database}", value
        )
        value = re.sub(r"redis://redis:6379/\d+", f"redis://127.0.0.1:6379/{self.redis_db}", value)
        value = value.replace("http://minio:9000", f"http://127.0.0.1:{self.ports['moto']}")
        value = value.replace("http://livekit:7880", f"http://127.0.0.1:{self.ports['livekit']}")
        value = value.replace("ws://livekit:7880", f"ws://127.0.0.1:{self.ports['livekit']}")
        value = value.replace("http://web:8000", f"http://127.0.0.1:{self.web_ports[0]}")
        value = value.replace("http://stt-live:8000", f"http://127.0.0.1:{self.web_ports[0]}")
        return value.replace("/var/lib/scaiwave", str(self.work / "data"))

    def environment(self, service: str) -> dict[str, str]:
        declared = {k: self.local(str(v)) for k, v in self.services[service].get("environment", {}).items()}
        if "ALLOWED_HOSTS" in declared:  # Django compares host names without their port
            declared["ALLOWED_HOSTS"] = ",".join(h.split(":")[0] for h in declared["ALLOWED_HOSTS"].split(","))
        if "INTERNAL_HOSTS" in declared:
            declared["INTERNAL_HOSTS"] = "127.0.0.1"
        # The webhook receiver of the scenario listens on 127.0.0.1, which production refuses by default.
        declared["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
        declared["DATA_DIR"] = str(self.work / "data")
        return {"PATH": os.environ["PATH"], "HOME": str(self.work), "PYTHONUNBUFFERED": "1", **declared}

    def command(self, service: str) -> list[str]:
        command = self.services[service]["command"]
        argv = [self.local(part) for part in (shlex.split(command) if isinstance(command, str) else command)]
        if argv[0] in {"python", "celery", "uvicorn"}:
            argv = [PYTHON, *(["-m", argv[0]] if argv[0] != "python" else []), *argv[1:]]
        return argv

    # --- processes ---------------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def run_once(self, service: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            self.command(service),
            cwd=ROOT,
            env=env or self.environment(service),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"prod-check: one-shot {service} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                print(f"prod-check: {name} killed", file=sys.stderr)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.work.glob("*.log"))

    def up(self) -> None:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.database}"')
        redis.Redis.from_url(f"redis://127.0.0.1:6379/{self.redis_db}").flushdb()
        (self.work / "data").mkdir()  # the image creates DATA_DIR (Dockerfile); beat's volume holds its schedule
        self.start(
            "minio",
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports["moto"])],
            {"PATH": os.environ["PATH"]},
        )
        wait_for("moto", lambda: httpx.get(f"http://127.0.0.1:{self.ports['moto']}/").status_code < 500)
        self.run_once("createbucket")
        # LiveKit: the keys and webhook URL of the rendered deploy/livekit.yaml, served by the emulator.
        rendered = self.work / "livekit-config"
        render = self.command("livekit-config")
        render[-1] = str(rendered)  # the compose step writes into its volume; here, a local folder
        subprocess.run(render, cwd=ROOT, env=self.environment("livekit-config"), check=True, capture_output=True)
        livekit = yaml.safe_load((rendered / "livekit.yaml").read_text())
        [(key, secret)] = livekit["keys"].items()
        self.start(
            "livekit",
            [PYTHON, "-m", "livekit_emulator"],
            {
                "PATH": os.environ["PATH"],
                "PYTHONUNBUFFERED": "1",
                "EMULATOR_HOST": "127.0.0.1",
                "EMULATOR_PORT": str(self.ports["livekit"]),
                "LIVEKIT_API_KEY": key,
                "LIVEKIT_API_SECRET": secret,
                "EMULATOR_WEBHOOK_URLS": ",".join(self.local(url) for url in livekit["webhook"]["urls"]),
                "EMULATOR_FILE_OUTPUT_DIR": str(self.work / "egress"),
            },
        )
        wait_for("the LiveKit emulator", lambda: httpx.get(f"http://127.0.0.1:{self.ports['livekit']}/").is_success)
        self.run_once("migrate")
        self.bootstrap = json.loads(self.run_once("bootstrap").strip().splitlines()[-1])
        for index, port in enumerate(self.web_ports):
            argv = self.command("web")
            argv[argv.index("--port") + 1] = str(port)
            argv[argv.index("--host") + 1] = "127.0.0.1"
            argv[argv.index("--workers") + 1] = "1"
            self.start(f"web{index + 1}", argv, self.environment("web"))
        # Every Celery service of the compose file: the worker per queue, the stt-post worker, beat.
        for name, service in self.services.items():
            if not str(service.get("image", "")).startswith("scaiwave:") or service.get("restart") == "no":
                continue
            command = self.command(name)
            if "celery" in command:
                self.start(name, command, self.environment(name))
        self._front()
        for port in self.web_ports:
            wait_for(f"web on {port}", partial(self._healthy, port))

    @staticmethod
    def _healthy(port: int) -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").is_success

    def _front(self) -> None:
        caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
        upstreams = " ".join(f"127.0.0.1:{port}" for port in self.web_ports)
        caddyfile = caddyfile.replace("dynamic a web 8000", f"to {upstreams}")
        caddyfile = caddyfile.replace("lb_policy least_conn", "lb_policy round_robin")
        caddyfile = caddyfile.replace("livekit:7880", f"127.0.0.1:{self.ports['livekit']}")
        caddyfile = caddyfile.replace("ingress:8080", f"127.0.0.1:{free_port()}")
        caddyfile = caddyfile.replace("minio:9000", f"127.0.0.1:{self.ports['moto']}")
        caddyfile = caddyfile.replace(
            "{$CADDY_GLOBAL_OPTIONS}",
            f"local_certs\n\tskip_install_trust\n\tadmin 127.0.0.1:{free_port()}\n\tauto_https disable_redirects",
        )
        path = self.work / "Caddyfile"
        path.write_text(caddyfile)
        env = {
            **self.environment("caddy"),
            "XDG_DATA_HOME": str(self.work / "caddy-data"),
            "XDG_CONFIG_HOME": str(self.work / "caddy-config"),
        }
        self.start("caddy", ["caddy", "run", "--config", str(path), "--adapter", "caddyfile"], env)
        self.ca = self.work / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        wait_for("caddy's local CA", self.ca.exists)


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise SystemExit(
            f"prod-check: {response.request.method} {response.request.url} -> {response.status_code}"
            f" (expected {status}): {response.text[:500]}"
        )
    return response


def json_when(client: httpx.Client, path: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """GET path (expecting 200): its JSON body once `ready` holds for it, else None."""
    body: dict[str, Any] = expect(client.get(path), 200).json()
    return body if ready(body) else None


def user_token(topology: Topology, user: str) -> str:
    claims = {"iss": topology.bootstrap["api_key"], "sub": user, "exp": int(time.time()) + 600}
    return str(jwt.encode(claims, topology.bootstrap["api_secret"], algorithm="HS256"))


def events_across_web_processes(topology: Topology, client: httpx.Client, base: str) -> None:
    """Two sockets for bob, opened back to back so the front's round robin puts them on both web processes; an
    invite caused through either process reaches both."""
    for user, power in (("alice", 50), ("bob", 0)):
        response = client.put(f"/v1/rooms/prod-check/members/{user}", json={"powerLevel": power, "name": user.title()})
        if response.status_code not in (200, 201):
            expect(response, 201)
    # Users authenticate with their own bearer token: a client without the server's X-API-Key.
    users = httpx.Client(base_url=base, verify=str(topology.ca), timeout=30)
    context = ssl.create_default_context(cafile=str(topology.ca))
    url = f"{base.replace('https://', 'wss://')}/v1/events?access_token={user_token(topology, 'bob')}"

    async def run() -> list[str]:
        async with websockets.connect(url, ssl=context) as first, websockets.connect(url, ssl=context) as second:
            await asyncio.sleep(1)
            alice = {"Authorization": f"Bearer {user_token(topology, 'alice')}"}
            initiated = await asyncio.to_thread(
                users.post, "/v1/calls/initiate", json={"room_id": "prod-check", "type": "audio"}, headers=alice
            )
            expect(initiated, 201)
            got = []
            for socket_ in (first, second):
                while True:
                    frame = json.loads(await asyncio.wait_for(socket_.recv(), timeout=20))
                    if frame.get("type") == "swp.call.invite":
                        got.append(frame["type"])
                        break
            call_id = initiated.json()["data"]["call_id"]
            await asyncio.to_thread(lambda: expect(users.post(f"/v1/calls/{call_id}/end", headers=alice), 200))
            return got

    try:
        received = asyncio.run(run())
    finally:
        users.close()
    assert received == ["swp.call.invite", "swp.call.invite"], received
    print("prod-check: swp.call.invite reached sockets on both web processes")


def scenario(topology: Topology) -> None:
    base = f"https://localhost:{topology.ports['front_app']}"
    secret = topology.bootstrap["api_secret"]
    client = httpx.Client(base_url=base, verify=str(topology.ca), timeout=30, headers={"X-API-Key": secret})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        expect(client.get("/healthz"), 200)
        wait_for(
            "the front to reach both web processes", lambda: all(client.get("/readyz").is_success for _ in range(4))
        )
        # Post-call transcription is on once the stt-post worker's heartbeat arrives.
        health = wait_for(
            "the speech worker's heartbeat",
            partial(json_when, client, "/v1/health", lambda body: body["capabilities"]["transcriptionPost"]),
        )
        assert health["version"] == scaiwave.__version__, health
        print(f"prod-check: GET /v1/health over HTTPS -> {health}")
        login = expect(client.get("/admin/login/"), 200)
        assert "csrfmiddlewaretoken" in login.text
        print("prod-check: admin login page over HTTPS -> 200")

        hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        expect(
            client.post("/v1/webhooks", json={"url": hook_url, "events": ["room_created", "participant_joined"]}), 201
        )
        room = expect(client.post("/v1/rooms", json={"name": "prod-check"}), 201).json()
        print(f"prod-check: room created through LiveKit: {room.get('name')}")
        tokens = [
            expect(
                client.post(
                    "/v1/token",
                    json={"roomId": "prod-check", "userId": user, "name": user.title(), "role": "participant"},
                ),
                200,
            ).json()
            for user in ("alice", "bob")
        ]
        control = EmulatorControl(f"http://127.0.0.1:{topology.ports['livekit']}")
        for token in tokens:
            control.connect(token["token"])
        # LiveKit's webhooks reach web over plain HTTP (an exempt path); the worker delivers ours.
        wait_for(
            "room_created and two participant_joined deliveries",
            lambda: (
                sorted(body.get("type", "") for _, body in Receiver.received)
                == ["participant_joined", "participant_joined", "room_created"]
            ),
            timeout=60,
        )
        print(f"prod-check: webhook deliveries received: {len(Receiver.received)}")

        events_across_web_processes(topology, client, base)

        # A recording of real speech: egress writes it to the bucket, the download URL is the public files front.
        [livekit_room] = [r["name"] for r in control.state()["rooms"]]
        control.publish(livekit_room, "alice", file=SPEECH, unpublish_on_end=False)
        started = expect(client.post("/v1/rooms/prod-check/recording/start"), 201).json()
        time.sleep(6)
        expect(client.post("/v1/rooms/prod-check/recording/stop"), 200)
        recording_id = started["recordingId"]
        wait_for(
            "the recording to be ready",
            lambda: expect(client.get(f"/v1/recordings/{recording_id}"), 200).json()["status"] == "ready",
            timeout=90,
        )
        location = expect(client.get(f"/v1/recordings/{recording_id}/media"), 302).headers["location"]
        files_front = f"https://localhost:{topology.ports['front_files']}/"
        assert location.startswith(files_front), location
        media = expect(httpx.get(location, verify=str(topology.ca), timeout=30), 200)
        assert len(media.content) > 1000
        print(f"prod-check: recording {recording_id} downloaded through the presigned URL: {len(media.content)} bytes")

        # Its transcript, by the stt-post worker.
        job = expect(client.post(f"/v1/recordings/{recording_id}/transcribe", json={"language": "en-US"}), 202).json()
        transcript = wait_for(
            "the transcript",
            partial(
                json_when,
                client,
                f"/v1/transcriptions/{job['transcriptionId']}",
                lambda body: body["status"] in {"completed", "failed"},
            ),
            timeout=240,
        )
        assert transcript["status"] == "completed", transcript
        text = " ".join(segment["text"] for segment in transcript["segments"])
        assert text.strip(), transcript
        print(f"prod-check: transcript: {text.strip()[:120]!r}")
    finally:
        receiver.shutdown()
        client.close()


def main() -> int:
    if not shutil.which("caddy") or not shutil.which("docker-compose"):
        print("prod-check needs caddy and docker-compose (apt-get install caddy docker-compose)", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    topology = Topology()
    started = time.monotonic()
    try:
        topology.up()
        print(
            f"prod-check: topology up in {time.monotonic() - started:.1f} s ({', '.join(sorted(topology.processes))})"
        )
        scenario(topology)
    except (SystemExit, AssertionError, Exception) as exc:
        print(topology.logs(), file=sys.stderr)
        print(f"prod-check: FAILED: {exc!r}", file=sys.stderr)
        return 1
    finally:
        topology.stop()
    print(f"prod-check: passed in {time.monotonic() - started:.1f} s")
    shutil.rmtree(topology.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
