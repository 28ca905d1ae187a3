"""Calls test personas: one room in acme with members of known power, LiveKit through the emulator.

alice (initiator, power 0), bob (power 0), carol (power 49), dave (power 50) are members of
"standup"; mallory is an acme user outside the room; globex is another tenant.
"""

from __future__ import annotations

import pytest

from livekit_emulator.testing import EmulatorProcess, free_port
from rooms.models import Room, RoomMember
from scaiwave.testing import TenantCreds

MEMBERS = {"alice": 0, "bob": 0, "carol": 49, "dave": 50}


def make_room(creds: TenantCreds, name: str, members: dict[str, int]) -> Room:
    room = Room.objects.create(tenant=creds.tenant, name=name, livekit_name=Room.livekit_name_for(creds.tenant, name))
    for sub, power in members.items():
        RoomMember.objects.create(room=room, user=creds.user_row(sub, name=sub.title()), power_level=power)
    return room


@pytest.fixture(scope="session")
def emulator():
    with EmulatorProcess(api_secret="calls-test-secret-that-is-long-enough-for-hs256") as process:
        yield process


@pytest.fixture
def livekit(emulator, settings):
    """ScaiWave pointed at a clean emulator."""
    emulator.control.reset()
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_PUBLIC_URL = emulator.ws_url
    settings.LIVEKIT_API_KEY = emulator.api_key
    settings.LIVEKIT_API_SECRET = emulator.api_secret
    return emulator


@pytest.fixture
def livekit_down(settings):
    """ScaiWave pointed at a port where nothing listens."""
    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    settings.LIVEKIT_API_KEY = "devkey"
    settings.LIVEKIT_API_SECRET = "a-secret-long-enough-for-hs256-signatures"
    settings.LIVEKIT_TIMEOUT = 0.5


@pytest.fixture
def standup(acme) -> Room:
    return make_room(acme, "standup", MEMBERS)


def initiate(creds: TenantCreds, sub: str = "alice", room: str = "standup", type_: str = "audio"):
    return creds.user(sub).post("/v1/calls/initiate", {"room_id": room, "type": type_}, format="json")


@pytest.fixture
def ringing(acme, standup, livekit) -> str:
    """A call alice started in standup, still ringing; its id."""
    response = initiate(acme)
    assert response.status_code == 201, response.json()
    return str(response.json()["data"]["call_id"])
