"""The failure switch for the Twirp endpoints, seen through the unmodified Python client."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from livekit import api
from livekit.protocol import room as rm

from .conftest import lk

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key")


def list_rooms(client: api.LiveKitAPI):
    return client.room.list_rooms(rm.ListRoomsRequest())


def test_unreachable_aborts_the_connection_so_the_client_raises_a_connection_error(emu):
    emu.control.faults(mode="unreachable")
    with pytest.raises(aiohttp.ClientError):
        lk(emu, list_rooms)
    assert emu.control.state()["faults"]["mode"] == "unreachable"  # the control API is never faulted


def test_slow_delays_the_answer_and_trips_a_short_client_timeout(emu):
    emu.control.faults(mode="slow", slow_seconds=0.6)
    started = time.monotonic()
    assert list(lk(emu, list_rooms).rooms) == []
    assert time.monotonic() - started >= 0.6
    # livekit-api 1.2.2 passes timeout=None per request, which makes aiohttp ignore the session's ClientTimeout;
    # a caller that wants a bound must apply it itself.
    with pytest.raises(asyncio.TimeoutError):
        lk(emu, lambda c: asyncio.wait_for(list_rooms(c), 0.2))


def test_the_sdk_session_timeout_is_not_applied_by_livekit_api_1_2_2(emu):
    emu.control.faults(mode="slow", slow_seconds=0.5)
    started = time.monotonic()
    lk(emu, list_rooms, timeout=aiohttp.ClientTimeout(total=0.1))  # does not raise
    assert time.monotonic() - started >= 0.5


def test_error_answers_503_unavailable(emu):
    emu.control.faults(mode="error")
    with pytest.raises(api.TwirpError) as error:
        lk(emu, list_rooms)
    assert (error.value.code, error.value.status) == ("unavailable", 503)


def test_ok_restores_normal_service(emu):
    emu.control.faults(mode="error")
    emu.control.faults(mode="ok")
    assert list(lk(emu, list_rooms).rooms) == []
