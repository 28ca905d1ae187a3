"""docker-compose.yml, as Debian's docker-compose resolves it (`config`; no engine needed): the production topology.

The file is read after interpolation with a sample .env, so these tests see what a deployer's engine would run.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.urls import reverse

REPO = Path(settings.BASE_DIR)
SAMPLE_ENV = {
    "SECRET_KEY": "sample-secret-key",
    "SCAIWAVE_DOMAIN": "sw.example.com",
    "LIVEKIT_DOMAIN": "lk.example.com",
    "FILES_DOMAIN": "files.example.com",
    "TURN_DOMAIN": "turn.example.com",
    "PUBLIC_IP": "203.0.113.7",
    "POSTGRES_PASSWORD": "sample-postgres-password",
    "MINIO_ROOT_PASSWORD": "sample-minio-password",
    "LIVEKIT_API_SECRET": "sample-livekit-secret-of-at-least-32-chars",
    "TURN_PASSWORD": "sample-turn-password",
}
QUEUES = {"calls", "webhooks", "default", "transcription"}


def compose_config(tmp_path: Path, *args: str) -> str:
    env_file = tmp_path / "sample.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SAMPLE_ENV.items()))
    result = subprocess.run(
        ["docker-compose", "--project-directory", str(REPO), "--env-file", str(env_file), *args, "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    text = compose_config(tmp_path_factory.mktemp("compose"), "--profile", "stt-post", "--profile", "stt-live")
    parsed: dict[str, dict[str, Any]] = yaml.safe_load(text)["services"]
    return parsed


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_every_image_is_pinned_to_a_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: {image}"


def test_every_long_running_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if _one_shot(service):
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_web_workers_and_beat_start_after_migrate_and_bootstrap_succeeded(services: dict[str, Any]) -> None:
    scaiwave = [name for name, s in services.items() if s["image"].startswith("scaiwave:") and not _one_shot(s)]
    assert {"web", "beat", "worker-calls", "worker-webhooks", "worker-default"} <= set(scaiwave)
    for name in scaiwave:
        depends = services[name]["depends_on"]
        for step in ("migrate", "bootstrap", "createbucket"):
            assert depends[step]["condition"] == "service_completed_successfully", (name, step)


def test_one_shot_steps_are_waited_for_by_exit_code(services: dict[str, dict[str, Any]]) -> None:
    one_shots = {name for name, service in services.items() if _one_shot(service)}
    assert one_shots == {"migrate", "bootstrap", "createbucket", "livekit-config"}
    for service in services.values():
        for dependency, condition in service.get("depends_on", {}).items():
            if dependency in one_shots:
                assert condition["condition"] == "service_completed_successfully"
    assert "migrate" in services["bootstrap"]["depends_on"]
    assert _command(services["createbucket"])[-1] == "ensure_bucket"


def test_every_queue_the_code_routes_to_has_a_worker(services: dict[str, dict[str, Any]]) -> None:
    consumed: dict[str, str] = {}
    for name, service in services.items():
        command = _command(service)
        if command[:4] == ["celery", "-A", "scaiwave", "worker"]:
            for queue in command[command.index("-Q") + 1].split(","):
                consumed[queue] = name
    routed = {settings.CELERY_TASK_DEFAULT_QUEUE} | {
        route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route
    }
    assert routed <= set(consumed)
    assert set(consumed) == QUEUES


def test_exactly_one_beat(services: dict[str, dict[str, Any]]) -> None:
    beat = ["celery", "-A", "scaiwave", "beat"]
    beats = [name for name, service in services.items() if _command(service)[:4] == beat]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1


def test_speech_workers_start_only_with_their_profiles(services: dict[str, dict[str, Any]]) -> None:
    # Document 001: live transcription "requires the stt-live profile", post-call "the stt-post profile".
    with_profiles = {name: service["profiles"] for name, service in services.items() if service.get("profiles")}
    assert with_profiles == {"worker-transcription": ["stt-post"], "stt-live": ["stt-live"]}


def test_production_env_serves_https_behind_the_front_and_lets_internal_calls_in(services: dict[str, Any]) -> None:
    env = services["web"]["environment"]
    assert env["SCAIWAVE_MODE"] == "production"
    assert env["BEHIND_TLS_PROXY"] == "true"
    assert env["PUBLIC_BASE_URL"] == "https://sw.example.com"
    assert "web" in env["INTERNAL_HOSTS"].split(",")
    assert env["S3_PUBLIC_ENDPOINT_URL"] == "https://files.example.com"
    assert env["LIVEKIT_PUBLIC_URL"] == "wss://lk.example.com"
    assert "ports" not in services["web"]  # only the TLS front is published


def test_a_missing_secret_stops_the_deployment_before_it_starts(tmp_path: Path) -> None:
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SAMPLE_ENV.items() if k != "LIVEKIT_API_SECRET"))
    result = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "LIVEKIT_API_SECRET" in result.stderr


def test_livekit_egress_and_ingress_use_scaiwaves_keys_and_webhook_url(
    tmp_path: Path, services: dict[str, Any]
) -> None:
    step = services["livekit-config"]
    output = tmp_path / "rendered"
    subprocess.run(
        [sys.executable, "deploy/render_config.py", str(output)],
        cwd=REPO,
        env={**step["environment"], "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    web = services["web"]["environment"]
    key, secret = web["LIVEKIT_API_KEY"], web["LIVEKIT_API_SECRET"]
    livekit = yaml.safe_load((output / "livekit.yaml").read_text())
    assert livekit["keys"] == {key: secret}
    assert livekit["webhook"]["api_key"] == key
    assert livekit["webhook"]["urls"] == [f"http://web:8000{reverse('livekit-webhook')}"]
    for name in ("egress.yaml", "ingress.yaml"):
        worker = yaml.safe_load((output / name).read_text())
        assert (worker["api_key"], worker["api_secret"]) == (key, secret)
        assert worker["ws_url"] == "ws://livekit:7880"
    assert web["LIVEKIT_URL"] == "http://livekit:7880"
