"""LiveKit's client protocol on /rtc, driven by the unmodified `livekit` real-time SDK (1.2.0) and plain HTTP."""

from __future__ import annotations

import asyncio
import math
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from livekit import api, rtc

from livekit_emulator.testing import EmulatorProcess

from .conftest import WebhookSink, lk
from .media_clients import connect, publish_microphone, publish_pcm, record_first_audio, rtc_url


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def tone(seconds: float, frequency: float = 440.0) -> bytes:
    t = np.arange(int(48_000 * seconds)) / 48_000
    return (np.sin(2 * math.pi * frequency * t) * 8000).astype(np.int16).tobytes()


def wait(coroutine: Any, timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def until(predicate: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


# -- HTTP answers ----------------------------------------------------------------------------------------------


def test_validate_answers_success_for_a_join_token(emu: EmulatorProcess) -> None:
    assert http_get(f"{emu.url}/rtc/validate?access_token={emu.token('alice', 'r1')}") == (200, "success")
    assert http_get(f"{emu.url}/rtc/validate", emu.token("alice", "r1")) == (200, "success")


def test_validate_refuses_as_livekit_does(emu: EmulatorProcess) -> None:
    assert http_get(f"{emu.url}/rtc/validate") == (401, "no permissions to access the room")
    no_join = api.AccessToken(emu.api_key, emu.api_secret).with_identity("a").with_grants(api.VideoGrants(room="r1"))
    assert http_get(f"{emu.url}/rtc/validate", no_join.to_jwt()) == (401, "permissions denied")
    forged = api.AccessToken(emu.api_key, "not-the-secret-at-all-but-long-enough").with_identity("a")
    forged = forged.with_grants(api.VideoGrants(room_join=True, room="r1"))
    status, body = http_get(f"{emu.url}/rtc/validate", forged.to_jwt())
    assert status == 401 and body.startswith("invalid authorization token")


def test_any_origin_may_call_validate_as_livekit_allows_cors(emu: EmulatorProcess) -> None:
    # livekit-client fetches /rtc/validate from the page's origin; a blocked fetch reads as "server unreachable".
    request = urllib.request.Request(
        f"{emu.url}/rtc/validate?access_token={emu.token('alice', 'r1')}", headers={"Origin": "http://app.test"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "http://app.test"
    preflight = urllib.request.Request(
        f"{emu.url}/twirp/livekit.RoomService/ListRooms",
        method="OPTIONS",
        headers={
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    with urllib.request.urlopen(preflight, timeout=10) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Headers"] == "authorization, content-type"


def test_rtc_without_a_websocket_upgrade_is_404_and_v1_is_absent(emu: EmulatorProcess) -> None:
    token = emu.token("alice", "r1")
    assert http_get(f"{emu.url}/rtc?access_token={token}")[0] == 404
    assert http_get(f"{emu.url}/rtc/v1?access_token={token}") == (404, "404 page not found\n")
    assert http_get(f"{emu.url}/rtc/v1/validate?access_token={token}") == (404, "404 page not found\n")


def test_a_bad_token_fails_the_sdk_connect_and_nobody_joins(emu: EmulatorProcess) -> None:
    forged = api.AccessToken(emu.api_key, "not-the-secret-at-all-but-long-enough").with_identity("mallory")
    token = forged.with_grants(api.VideoGrants(room_join=True, room="r1")).to_jwt()
    with pytest.raises(rtc.ConnectError):
        wait(connect(emu, token))
    assert emu.control.state()["rooms"] == []


# -- a call between SDK clients ----------------------------------------------------------------------------------


def test_real_clients_drive_the_webhooks_and_hear_each_other(emu: EmulatorProcess, sink: WebhookSink) -> None:
    async def call() -> tuple[bytearray, list[str], str]:
        bob = await connect(emu, emu.token("bob", "r1"))
        heard = record_first_audio(bob)
        alice = await connect(emu, emu.token("alice", "r1", name="Alice"))
        others = list(alice.remote_participants)
        await until(lambda: "alice" in bob.remote_participants)
        name = bob.remote_participants["alice"].name
        publication = await publish_pcm(alice, tone(1.0))
        await until(lambda: len(heard) > 48_000)
        await alice.local_participant.unpublish_track(publication.sid)
        await asyncio.sleep(0.3)
        await alice.disconnect()
        await bob.disconnect()
        return heard, others, name

    heard, others, name = wait(call())

    assert others == ["bob"] and name == "Alice"
    samples = np.frombuffer(bytes(heard), dtype=np.int16).astype(float)
    assert np.sqrt(np.mean(samples**2)) > 2000  # a 440 Hz tone at amplitude 8000, not silence
    events = sink.wait_for(lambda ev: sum(e["event"] == "participant_left" for e in ev) == 2)
    names = [(e["event"], e.get("participant", {}).get("identity")) for e in events]
    assert names.index(("participant_joined", "bob")) < names.index(("participant_joined", "alice"))
    assert ("track_published", "alice") in names and ("track_unpublished", "alice") in names
    left = [e["participant"] for e in events if e["event"] == "participant_left"]
    assert {p["identity"]: p["disconnectReason"] for p in left} == {
        "alice": "CLIENT_INITIATED",
        "bob": "CLIENT_INITIATED",
    }
    published = next(e for e in events if e["event"] == "track_published")
    assert published["track"]["source"] == "MICROPHONE" and published["track"]["mimeType"] == "audio/opus"


def test_a_token_without_can_publish_cannot_publish_the_server_refuses(emu: EmulatorProcess) -> None:
    # The server answers the AddTrackRequest with RequestResponse NOT_ALLOWED and no track; SDK 1.2.0 does not read
    # that answer and reports "track publication timed out" after its own time-out.
    async def attempt() -> list[Any]:
        room = await connect(emu, emu.token("watcher", "r1", can_publish=False))
        try:
            source = rtc.AudioSource(48_000, 1)
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            with pytest.raises(Exception, match="track publication timed out"):
                await asyncio.wait_for(room.local_participant.publish_track(track, options), 15)
            return emu.control.state()["rooms"][0]["participants"]
        finally:
            await room.disconnect()

    participants = wait(attempt())
    assert [p["identity"] for p in participants] == ["watcher"]
    assert participants[0]["tracks"] == []


def test_remove_participant_disconnects_the_real_client(emu: EmulatorProcess, sink: WebhookSink) -> None:
    async def call() -> Any:
        room = await connect(emu, emu.token("alice", "r1"))
        reasons: list[Any] = []
        room.on("disconnected", reasons.append)
        async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
            await client.room.remove_participant(api.RoomParticipantIdentity(room="r1", identity="alice"))
        await until(lambda: bool(reasons))
        return reasons[0], room.connection_state

    reason, state = wait(call())
    assert reason == rtc.DisconnectReason.PARTICIPANT_REMOVED
    assert state == rtc.ConnectionState.CONN_DISCONNECTED
    events = sink.wait_for(lambda ev: any(e["event"] == "participant_left" for e in ev))
    left = next(e for e in events if e["event"] == "participant_left")
    assert left["participant"]["disconnectReason"] == "PARTICIPANT_REMOVED"


def test_data_packets_reach_the_others_with_the_sender_stamped(emu: EmulatorProcess) -> None:
    async def call() -> list[tuple[bytes, str | None, str]]:
        bob = await connect(emu, emu.token("bob", "r1"))
        received: list[tuple[bytes, str | None, str]] = []

        @bob.on("data_received")
        def on_data(packet: rtc.DataPacket) -> None:
            sender = packet.participant.identity if packet.participant else None
            received.append((packet.data, sender, packet.topic or ""))

        alice = await connect(emu, emu.token("alice", "r1"))
        await alice.local_participant.publish_data(b"from alice", reliable=True, topic="chat")
        await until(lambda: len(received) == 1)
        async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
            request = api.SendDataRequest(room="r1", data=b"from the server", kind=api.DataPacket.Kind.RELIABLE)
            await client.room.send_data(request)
        await until(lambda: len(received) == 2)
        await alice.disconnect()
        await bob.disconnect()
        return received

    received = wait(call())
    assert received[0] == (b"from alice", "alice", "chat")
    assert received[1][0] == b"from the server" and received[1][1] is None


def test_a_control_api_participant_and_a_real_one_share_a_room(emu: EmulatorProcess) -> None:
    emu.control.connect(emu.token("bot", "r1"))

    async def call() -> tuple[list[str], list[str]]:
        alice = await connect(emu, emu.token("alice", "r1"))
        before = list(alice.remote_participants)
        emu.control.disconnect("r1", "bot")
        await until(lambda: "bot" not in alice.remote_participants)
        state = emu.control.state()["rooms"][0]["participants"]
        await alice.disconnect()
        return before, [p["identity"] for p in state]

    before, after = wait(call())
    assert before == ["bot"]
    assert after == ["alice"]


def test_mute_published_track_mutes_the_real_publisher(emu: EmulatorProcess) -> None:
    async def call() -> tuple[bool, bool]:
        alice = await connect(emu, emu.token("alice", "r1"))
        bob = await connect(emu, emu.token("bob", "r1"))
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await alice.local_participant.publish_track(track, options)
        await until(lambda: publication.sid in getattr(bob.remote_participants.get("alice"), "track_publications", {}))
        async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
            await client.room.mute_published_track(
                api.MuteRoomTrackRequest(room="r1", identity="alice", track_sid=publication.sid, muted=True)
            )
        remote = bob.remote_participants["alice"].track_publications[publication.sid]
        await until(lambda: publication.muted and remote.muted)
        result = publication.muted, remote.muted
        await alice.disconnect()
        await bob.disconnect()
        return result

    assert wait(call()) == (True, True)


def test_revoking_can_publish_unpublishes_the_real_clients_track_at_once(
    emu: EmulatorProcess, sink: WebhookSink
) -> None:
    async def call() -> tuple[list[Any], list[str]]:
        alice = await connect(emu, emu.token("alice", "r1"))
        bob = await connect(emu, emu.token("bob", "r1"))
        source = rtc.AudioSource(48_000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await alice.local_participant.publish_track(track, options)
        await until(lambda: publication.sid in getattr(bob.remote_participants.get("alice"), "track_publications", {}))
        async with api.LiveKitAPI(emu.url, emu.api_key, emu.api_secret) as client:
            await client.room.update_participant(
                api.UpdateParticipantRequest(
                    room="r1",
                    identity="alice",
                    permission=api.ParticipantPermission(can_subscribe=True, can_publish=False),
                )
            )
        await until(lambda: not bob.remote_participants["alice"].track_publications)
        state = emu.control.state()["rooms"][0]["participants"]
        await alice.disconnect()
        await bob.disconnect()
        return [t for p in state for t in p["tracks"]], [p["identity"] for p in state]

    tracks, identities = wait(call())
    assert tracks == [] and sorted(identities) == ["alice", "bob"]
    sink.wait_for(lambda ev: any(e["event"] == "track_unpublished" for e in ev))


def test_in_a_room_of_three_talkers_everyone_hears_both_others(emu: EmulatorProcess) -> None:
    # Subscriptions that arrive while a subscriber offer is outstanding must still carry media.
    async def call() -> dict[tuple[str, str], int]:
        loud: dict[tuple[str, str], int] = {}
        readers: list[asyncio.Task[None]] = []

        def listen(listener: str) -> Any:
            async def read(track: rtc.Track, speaker: str) -> None:
                async for event in rtc.AudioStream(track, sample_rate=48_000, num_channels=1):
                    if np.abs(np.frombuffer(bytes(event.frame.data), dtype=np.int16)).max(initial=0) > 1000:
                        loud[(listener, speaker)] = loud.get((listener, speaker), 0) + 1

            def on_subscribed(track: rtc.Track, publication: Any, participant: rtc.RemoteParticipant) -> None:
                readers.append(asyncio.ensure_future(read(track, participant.identity)))

            return on_subscribed

        clients = []
        for name in ("c0", "c1", "c2"):
            client = rtc.Room()
            client.on("track_subscribed", listen(name))
            await client.connect(rtc_url(emu), emu.token(name, "trio"))
            clients.append(client)
        sources = [(await publish_microphone(client))[1] for client in clients]

        async def talk(source: rtc.AudioSource, frequency: float) -> None:
            pcm = tone(0.01, frequency)
            while True:
                await source.capture_frame(rtc.AudioFrame(pcm, 48_000, 1, len(pcm) // 2))

        talkers = [asyncio.ensure_future(talk(s, 300 + 100 * i)) for i, s in enumerate(sources)]
        try:
            await until(lambda: len(loud) == 6 and min(loud.values()) > 50, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"loud 10 ms frames heard (listener, speaker): {loud}") from exc
        finally:
            for task in talkers:
                task.cancel()
            for client in clients:
                await client.disconnect()
        return loud

    loud = wait(call())
    assert sorted(loud) == [(a, b) for a in ("c0", "c1", "c2") for b in ("c0", "c1", "c2") if a != b]


def test_the_same_identity_joining_again_disconnects_the_first_with_duplicate_identity(emu: EmulatorProcess) -> None:
    async def call() -> tuple[Any, bool]:
        first = await connect(emu, emu.token("alice", "r1"))
        reasons: list[Any] = []
        first.on("disconnected", reasons.append)
        second = await connect(emu, emu.token("alice", "r1"))
        await until(lambda: bool(reasons))
        connected = second.isconnected()
        await second.disconnect()
        return reasons[0], connected

    reason, second_connected = wait(call())
    assert reason == rtc.DisconnectReason.DUPLICATE_IDENTITY
    assert second_connected


def test_a_full_room_refuses_the_next_real_client(emu: EmulatorProcess) -> None:
    lk(emu, lambda c: c.room.create_room(api.CreateRoomRequest(name="small", max_participants=1)))

    async def call() -> list[str]:
        alice = await connect(emu, emu.token("alice", "small"))
        try:
            with pytest.raises(rtc.ConnectError):
                await connect(emu, emu.token("bob", "small"))
            return [p["identity"] for p in emu.control.state()["rooms"][0]["participants"]]
        finally:
            await alice.disconnect()

    assert wait(call()) == ["alice"]
