"""`make run`'s stack on embedded defaults, as real processes: it serves, then stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livekit_emulator.testing import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _embedded_env(data_dir: Path, port: int, emulator_port: int) -> dict[str, str]:
    # Embedded defaults: no DATABASE_URL, no REDIS_URL, no LIVEKIT_URL.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "LIVEKIT_URL"}}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "LIVEKIT_EMULATOR_PORT": str(emulator_port),
        }
    )
    return env


def test_run_stack_serves_health_docs_admin_and_stops_on_ctrl_c(tmp_path):
    port, emulator_port = free_port(), free_port()
    env = _embedded_env(tmp_path, port, emulator_port)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    creds = json.loads(
        subprocess.run(
            [sys.executable, "manage.py", "bootstrap", "--json"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert creds["livekit_url"] == f"ws://127.0.0.1:{emulator_port}"
    stack = subprocess.Popen(
        [sys.executable, "manage.py", "run_stack", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("the stack did not answer within 60 s")
        assert httpx.get(f"{base}/v1/health").status_code == 401
        health = httpx.get(f"{base}/v1/health", headers={"X-API-Key": creds["api_secret"]})
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert httpx.get(f"{base}/v1/docs").status_code == 200
        assert httpx.get(f"{base}/admin/login/").status_code == 200
        assert httpx.get(f"{base}/readyz").json()["broker"] == "filesystem"
        # The emulator is part of the stack.
        assert httpx.get(f"http://127.0.0.1:{emulator_port}/", timeout=2).text.strip() == "OK"
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        output, _ = stack.communicate(timeout=40)
    text = output.decode(errors="replace")
    assert stack.returncode == 0, text[-3000:]
    assert "ScaiWave stopped." in text
    assert "did not stop in time" not in text
