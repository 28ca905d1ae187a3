"""The same emulator driven by livekit-server-sdk 2.19.2 from npm, which speaks Twirp with JSON bodies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are not installed")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    modules = NODE_DIR / "node_modules" / "livekit-server-sdk"
    assert NPM is not None
    if not modules.is_dir():
        subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True, timeout=300
        )
    return modules


def test_node_sdk_contract_over_json(emu, node_modules):
    emu.control.connect(emu.token("nina", "node-room"))
    env = {
        **os.environ,
        "LIVEKIT_URL": emu.url,
        "LIVEKIT_API_KEY": emu.api_key,
        "LIVEKIT_API_SECRET": emu.api_secret,
        "ROOM": "node-room",
    }
    assert NODE is not None
    run = subprocess.run([NODE, "contract.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    assert out["createRoom"]["sid"].startswith("RM_") and out["createRoom"]["emptyTimeout"] == 120
    assert out["createRoom"]["metadata"] == "from-node"
    assert out["listRooms"] == ["node-room"]
    assert [p["identity"] for p in out["listParticipants"]] == ["nina"]
    started = out["startRoomCompositeEgress"]
    assert started["egressId"].startswith("EG_") and started["status"] == 0  # EGRESS_STARTING
    assert started["filename"].startswith("node/node-room-") and started["filename"].endswith(".ogg")
    assert out["stopEgress"]["status"] in (1, 2, 5)  # ACTIVE->ENDING, or STARTING->ABORTED

    assert out["missingGrant"]["status"] == 401 and out["missingGrant"]["code"] == "unauthenticated"
    assert out["unknownRoom"]["status"] == 404 and out["unknownRoom"]["code"] == "not_found"
    assert out["unknownRoom"]["message"] == "requested room does not exist"
    # The auth layer's 401 is plain text, so the Node SDK finds no Twirp code in it.
    assert out["badToken"]["status"] == 401 and out["badToken"]["code"] is None
