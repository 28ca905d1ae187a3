"""Embedded mode signs LiveKit tokens and webhooks with a pair made for this install, not LiveKit's public
dev pair (devkey/secret); explicit LIVEKIT_API_KEY/LIVEKIT_API_SECRET still win."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from scaiwave.settings import livekit_install_pair

ROOT = Path(__file__).resolve().parents[2]
PRINT_PAIR = (
    "import json; from django.conf import settings; "
    "print(json.dumps([settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET]))"
)


def settings_pair(data_dir: Path, **extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "scaiwave.settings", **extra})
    script = f"import django; django.setup(); {PRINT_PAIR}"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_pair_is_made_once_per_install_and_kept_private(tmp_path):
    first = livekit_install_pair(tmp_path)

    assert first != ("devkey", "secret")
    assert len(first[1]) >= 32  # HS256 wants a 256-bit key
    assert livekit_install_pair(tmp_path) == first
    assert livekit_install_pair(tmp_path / "another") != first
    assert stat.S_IMODE((tmp_path / "livekit_api_pair").stat().st_mode) == 0o600


def test_embedded_settings_use_the_install_pair_and_explicit_values_win(tmp_path):
    embedded = settings_pair(tmp_path)

    assert embedded == list(livekit_install_pair(tmp_path))
    assert "devkey" not in embedded and "secret" not in embedded
    assert settings_pair(tmp_path, LIVEKIT_API_KEY="mykey", LIVEKIT_API_SECRET="my-secret") == ["mykey", "my-secret"]
