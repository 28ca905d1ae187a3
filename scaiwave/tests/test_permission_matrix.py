"""The permission matrix: every API route x every kind of caller -> the status it must get.

Routes come from the URL conf itself (`get_resolver()`, walked recursively), so a new endpoint
without a row in EXPECTED fails `test_every_api_route_has_a_row`. Each (route, method) is one
test; it builds one set of acme objects (a room with members, a call, a recording with media, a
transcription, an uploaded call with an action item, a live call, a webhook with a delivery) and
sends the request once per persona, each inside a savepoint that is rolled back afterwards, so a
persona's DELETE does not change what the next one sees.

Personas:
  nobody     no credentials                  bad        an X-API-Key no tenant has
  key2       globex's API key                user2      a globex user (same external id as alice)
  outsider   acme user, not in the room      member0    alice, power 0 in the room
  member50   dave, power 50 in the room      key        acme's API key

Where the success code depends on LiveKit state (the emulator knows no participant "alice" until one
connects, say), a row lists the small set it accepts; never "any".
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from calls.models import Call, CallParticipant, LiveCall
from livekit_emulator.testing import EmulatorProcess
from recordings.models import MediaEntry, Recording
from rooms import livekit_gateway
from rooms.models import Room, RoomMember
from rooms.testing import livekit, livekit_emulator  # noqa: F401
from scaiwave.crypto import encrypt_secret
from scaiwave.testing import TenantCreds
from transcription.models import ActionItem, Transcription, UploadedCall
from transcription.tests.analysis_support import tone_wav
from webhooks.models.outbound import Delivery, WebhookEndpoint

PERSONAS = ("nobody", "bad", "key2", "user2", "outsider", "member0", "member50", "key")
API_PREFIXES = ("v1/", "api/")
NOT_API = {"schema", "docs", "livekit-webhook"}  # the document itself, its viewer, LiveKit's signed intake
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


# ---------------------------------------------------------------------------------------------
# routes from the URL conf


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # e.g. "v1/rooms/<room_id>/members/<user_id>"
    methods: tuple[str, ...]


def _clean(pattern: str) -> str:
    """`^v1/calls/(?P<call_id>...)/join$` and `v1/rooms/<str:room_id>` -> `v1/calls/<call_id>/join`."""
    pattern = pattern.lstrip("^").rstrip("$")
    pattern = re.sub(r"\(\?P<(\w+)>(?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)", r"<\1>", pattern)
    return re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", pattern)


def _walk(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + _clean(str(entry.pattern)))
        else:
            yield prefix + _clean(str(entry.pattern)), entry


def api_routes() -> list[Route]:
    routes = []
    for pattern, entry in _walk(get_resolver()):
        if not pattern.startswith(API_PREFIXES) or entry.name in NOT_API:
            continue
        view = getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)
        assert view is not None, f"{pattern} is not a class-based view"
        methods = tuple(m for m in HTTP_METHODS if hasattr(view, m))
        routes.append(Route(entry.name or pattern, pattern, methods))
    return routes


# ---------------------------------------------------------------------------------------------
# the table

# Shorthands for the usual shapes of a row. Codes are per persona, in PERSONAS order.
D401 = {"nobody": {401}, "bad": {401}}


def row(**codes: int | set[int]) -> dict[str, set[int]]:
    out = {persona: ({value} if isinstance(value, int) else set(value)) for persona, value in codes.items()}
    return {**{k: set(v) for k, v in D401.items()}, **out}


def server_only(ok: int | set[int], *, key2: int | set[int] = 404) -> dict[str, set[int]]:
    """Tenant key only: users get 403 before anything is looked up; globex's key sees no acme object."""
    return row(key2=key2, user2=403, outsider=403, member0=403, member50=403, key=ok)


def user_only(
    *, user2: int | set[int], outsider: int | set[int], member0: int | set[int], member50: int | set[int]
) -> dict[str, set[int]]:
    """Bearer-token only: any API key gets 403 (whose tenant does not matter; nothing is looked up)."""
    return row(key2=403, key=403, user2=user2, outsider=outsider, member0=member0, member50=member50)


# What a room's members may do on a call of theirs: globex's alice sees no such call (404), acme's
# mallory is told she is not in the room (403).
MEMBERS_BOTH = user_only(user2=404, outsider=403, member0=200, member50=200)
# An uploaded call is its owner's (alice's) alone: anyone else, dave included, is told it does not exist.
OWNER_ONLY = user_only(user2=404, outsider=404, member0=200, member50=404)
# Lists and look-ups over the caller's own uploaded calls: every user gets 200 and sees only theirs.
OWN_LIST = user_only(user2=200, outsider=200, member0=200, member50=200)
# A room's state and history: the server, and the room's members.
ROOM_READ = row(key2=404, user2=404, outsider=403, member0=200, member50=200, key=200)
# A stored recording: members read it; outsiders and other tenants are told it does not exist.
RECORDING_READ = row(key2=404, user2=404, outsider=404, member0=200, member50=200, key=200)

EXPECTED: dict[tuple[str, str], dict[str, set[int]]] = {
    # foundation
    ("health", "get"): server_only(200, key2=200),
    # rooms (document 001): the host app's server manages rooms; users only ever hold LiveKit tokens.
    ("token", "post"): server_only(200, key2=200),  # globex may mint for a room name of its own
    ("token-refresh", "post"): server_only(200, key2=200),
    ("rooms", "get"): server_only(200, key2=200),
    ("rooms", "post"): server_only(201, key2=201),
    ("room-detail", "get"): server_only(200),
    ("room-detail", "delete"): server_only(204),
    ("room-participants", "get"): server_only(200),
    ("room-participant", "delete"): server_only(204),
    ("room-participant-mute", "post"): server_only(204),
    ("room-ingress", "get"): server_only(200),
    ("room-ingress", "post"): server_only(201),
    ("room-ingress-detail", "delete"): server_only(204),
    ("room-members", "get"): server_only(200),
    ("room-member", "put"): server_only(200),
    ("room-member", "delete"): server_only(204),
    # calls (document 000): users act on calls of rooms they belong to.
    ("call-initiate", "post"): user_only(user2=404, outsider=403, member0=201, member50=201),
    ("call-join", "post"): MEMBERS_BOTH,
    ("call-leave", "post"): MEMBERS_BOTH,
    # dave started the call: the initiator cannot reject it, he ends it.
    ("call-reject", "post"): user_only(user2=404, outsider=403, member0=200, member50=403),
    ("call-end", "post"): user_only(user2=404, outsider=403, member0=403, member50=200),
    ("call-state", "get"): MEMBERS_BOTH,
    ("room-calls", "get"): ROOM_READ,
    ("room-timeline", "get"): ROOM_READ,
    # live calls (document 003): anyone of the tenant may watch; the host (dave) or the server run it.
    ("live-calls", "get"): row(key2=200, user2=200, outsider=200, member0=200, member50=200, key=200),
    # a user may only host as themself (host_user_id "dave"); a server may name any host.
    ("live-calls", "post"): row(key2=201, user2=403, outsider=403, member0=403, member50=201, key=201),
    ("live-call", "get"): row(key2=404, user2=404, outsider=200, member0=200, member50=200, key=200),
    ("live-call", "delete"): row(key2=404, user2=404, outsider=403, member0=403, member50=204, key=204),
    # starting needs the host in person (he gets the broadcaster token back); the server cannot.
    ("live-call-start", "post"): user_only(user2=404, outsider=403, member0=403, member50=200),
    # the live call is still scheduled: the host and the server pass the permission check and get 409.
    ("live-call-end", "post"): row(key2=404, user2=404, outsider=403, member0=403, member50=409, key=409),
    ("live-call-token", "post"): user_only(user2=404, outsider=200, member0=200, member50=200),
    # recordings (documents 000 and 001)
    # power 50 may record; the call's LiveKit room is not running on the emulator, hence 409 (call_not_live).
    ("call-recording-start", "post"): user_only(user2=404, outsider=403, member0=403, member50=409),
    ("call-recording-stop", "post"): user_only(user2=404, outsider=403, member0=403, member50=200),
    ("call-recordings", "get"): MEMBERS_BOTH,
    ("room-recording-start", "post"): server_only(409),  # the room is not running on the emulator
    ("room-recording-stop", "post"): server_only(404),  # nothing is recording
    ("room-recording", "get"): server_only(200),
    ("recording-detail", "get"): RECORDING_READ,
    ("recording-detail", "delete"): row(key2=404, user2=404, outsider=404, member0=403, member50=204, key=204),
    ("recording-media", "get"): row(key2=404, user2=404, outsider=404, member0=302, member50=302, key=302),
    # the signed URL is the credential: without `sig`/`expires` every caller, API key or not, gets 403.
    ("media-download", "get"): {persona: {403} for persona in PERSONAS},
    # transcription
    ("recording-transcribe", "post"): server_only(202),
    ("transcriptions", "get"): server_only(200, key2=200),
    ("transcription-detail", "get"): server_only(200),
    ("transcription-detail", "delete"): server_only(204),
    ("room-transcription-start", "post"): server_only(201),
    ("room-transcription-stop", "post"): server_only(404),  # no live transcription running
    ("room-transcription", "get"): server_only(404),  # ditto
    ("room-transcription-speakers", "patch"): server_only(404),  # ditto
    # uploaded calls (document 002): per user, never per tenant key.
    ("call-analyze", "post"): user_only(user2=202, outsider=202, member0=202, member50=202),
    ("calls-status", "get"): OWN_LIST,  # another's id comes back under "missing"
    ("calls", "get"): OWN_LIST,
    ("calls", "delete"): OWN_LIST,  # another's id is reported as not found, nothing is deleted
    ("call-detail", "get"): OWNER_ONLY,
    ("call-detail", "delete"): user_only(user2=404, outsider=404, member0=204, member50=404),
    ("call-transcript", "get"): OWNER_ONLY,
    ("call-analysis", "get"): OWNER_ONLY,
    ("call-speakers", "patch"): OWNER_ONLY,
    ("action-items", "get"): OWN_LIST,
    ("action-item-detail", "patch"): OWNER_ONLY,
    # outbound webhooks: the tenant's server only.
    ("webhooks", "get"): server_only(200, key2=200),
    ("webhooks", "post"): server_only(201, key2=201),
    ("webhook", "get"): server_only(200),
    ("webhook", "patch"): server_only(200),
    ("webhook", "delete"): server_only(204),
    ("webhook-test", "post"): server_only(200),
    ("webhook-rotate-secret", "post"): server_only(200),
    ("webhook-deliveries", "get"): server_only(200),
    ("webhook-delivery-retry", "post"): server_only(202),
}


# ---------------------------------------------------------------------------------------------
# fixture objects


@dataclass
class World:
    room: Room
    call: Call
    recording: Recording
    media: MediaEntry
    transcription: Transcription
    uploaded: UploadedCall
    action_item: ActionItem
    live_call: LiveCall
    webhook: WebhookEndpoint
    delivery: Delivery
    clients: dict[str, APIClient]
    huddle: Room | None = None  # the same members, no call yet
    ingress_id: str = "IN_unknown"
    track_sid: str = "TR_unknown"


def _world(acme: TenantCreds, globex: TenantCreds) -> World:
    tenant = acme.tenant
    room = Room.objects.create(tenant=tenant, name="standup", livekit_name=Room.livekit_name_for(tenant, "standup"))
    alice, dave = acme.user_row("alice", name="Alice"), acme.user_row("dave", name="Dave")
    acme.user_row("mallory", name="Mallory")
    RoomMember.objects.create(room=room, user=alice, power_level=0)
    RoomMember.objects.create(room=room, user=dave, power_level=50)
    now = timezone.now()
    call = Call.objects.create(
        tenant=tenant,
        room=room,
        type=Call.Type.AUDIO,
        status=Call.Status.ACTIVE,
        initiator=dave,
        started_at=now,
        ring_expires_at=now + timedelta(seconds=30),
        livekit_room=room.livekit_name,
    )
    for person in (alice, dave):
        CallParticipant.objects.create(call=call, user=person, joined_at=now, livekit_identity=person.external_id)
    recording = Recording.objects.create(
        tenant=tenant,
        room=room,
        call=call,
        status=Recording.Status.READY,
        livekit_room=room.livekit_name,
        storage_key="recordings/standup/composite.mp4",
        requested_by=dave,
        started_at=now,
    )
    media = MediaEntry.objects.create(
        tenant=tenant,
        key="recordings/standup/composite.mp4",
        content_type="audio/ogg",
        size=4,
        sha256="0" * 64,
        source=MediaEntry.Source.EGRESS,
        recording=recording,
    )
    transcription = Transcription.objects.create(
        tenant=tenant, recording=recording, media_entry=media, status=Transcription.Status.COMPLETED, progress=100
    )
    uploaded = UploadedCall.objects.create(
        tenant=tenant,
        owner=alice,
        title="Q3",
        status=UploadedCall.Status.COMPLETED,
        transcription=transcription,
        speakers=[{"speakerId": "S1", "label": "SPEAKER_00", "name": "Speaker 1"}],
    )
    action_item = ActionItem.objects.create(call=uploaded, user=alice, text="Send the deck")
    live_room = Room.objects.create(tenant=tenant, name="town-hall", livekit_name=Room.livekit_name_for(tenant, "th"))
    RoomMember.objects.create(room=live_room, user=dave, power_level=100)
    RoomMember.objects.create(room=live_room, user=alice, power_level=0)
    live_call = LiveCall.objects.create(
        tenant=tenant, host=dave, room=live_room, title="Town hall", stream_call_id="stream-1"
    )
    webhook = WebhookEndpoint.objects.create(
        tenant=tenant, url="https://hooks.example.com/in", secret_encrypted=encrypt_secret("whsec_matrix")
    )
    delivery = Delivery.objects.create(
        tenant=tenant,
        endpoint=webhook,
        event_id="ev_matrix",
        event_type="room.created",
        payload=b"{}",
        status=Delivery.Status.FAILED,
    )
    bad = APIClient()
    bad.credentials(HTTP_X_API_KEY="sw_sk_not-a-real-key")
    clients = {
        "nobody": APIClient(),
        "bad": bad,
        "key2": globex.server(),
        "user2": globex.user("alice", name="Alice of Globex"),
        "outsider": acme.user("mallory", name="Mallory"),
        "member0": acme.user("alice", name="Alice"),
        "member50": acme.user("dave", name="Dave"),
        "key": acme.server(),
    }
    return World(
        room, call, recording, media, transcription, uploaded, action_item, live_call, webhook, delivery, clients
    )


def _livekit_state(name: str, world: World, emulator: EmulatorProcess) -> None:
    """LiveKit-side objects for the routes that act on them: alice connected with a track, an ingress."""
    if name in ("room-participant", "room-participant-mute"):
        livekit_name = world.room.livekit_name
        livekit_gateway.room_create(name=livekit_name)
        emulator.control.connect(emulator.token("alice", livekit_name))
        world.track_sid = emulator.control.publish(livekit_name, "alice")["sid"]
    if name == "room-ingress-detail":
        ingress = livekit_gateway.ingress_create(
            room_name=world.room.livekit_name, input_type="rtmp", participant_identity="cam", participant_name="Cam"
        )
        world.ingress_id = ingress.ingress_id
    if name == "call-initiate":
        huddle = Room.objects.create(
            tenant=world.room.tenant, name="huddle", livekit_name=Room.livekit_name_for(world.room.tenant, "huddle")
        )
        for member in world.room.members.all():
            RoomMember.objects.create(room=huddle, user=member.user, power_level=member.power_level)
        world.huddle = huddle


FOREIGN = ("nobody", "bad", "key2", "user2", "outsider")


def _fingerprint(world: World) -> tuple[Any, ...]:
    """The state of the fixture objects that a request could change."""
    room = Room.objects.filter(pk=world.room.pk).values_list("closed_at", "metadata").first()
    members = sorted(
        RoomMember.objects.filter(room=world.room).values_list("user__external_id", "power_level", "left_at")
    )
    call = Call.objects.filter(pk=world.call.pk).values_list("status", "ended_at").first()
    joined = sorted(
        CallParticipant.objects.filter(call=world.call).values_list("user__external_id", "joined_at", "left_at")
    )
    recording = Recording.objects.filter(pk=world.recording.pk).values_list("status").first()
    media = MediaEntry.objects.filter(pk=world.media.pk).exists()
    transcription = Transcription.objects.filter(pk=world.transcription.pk).values_list("status").first()
    uploaded = UploadedCall.objects.filter(pk=world.uploaded.pk).values_list("status", "speakers").first()
    item = ActionItem.objects.filter(pk=world.action_item.pk).values_list("done").first()
    live = LiveCall.objects.filter(pk=world.live_call.pk).values_list("status", "started_at").first()
    hook = WebhookEndpoint.objects.filter(pk=world.webhook.pk).values_list("enabled", "url", "secret_encrypted").first()
    delivery = Delivery.objects.filter(pk=world.delivery.pk).values_list("status", "attempt_count").first()
    recordings = Recording.objects.filter(room__tenant=world.room.tenant).count()
    calls = Call.objects.filter(tenant=world.room.tenant).count()
    return (
        room,
        members,
        call,
        joined,
        recording,
        media,
        transcription,
        uploaded,
        item,
        live,
        hook,
        delivery,
        recordings,
        calls,
    )


def _path(pattern: str, world: World) -> str:
    values = {
        "room_id": world.room.name,
        "participant_id": "alice",
        "ingress_id": world.ingress_id,
        "user_id": "alice",
        "call_id": world.call.pk,
        "live_call_id": str(world.live_call.pk),
        "recording_id": world.recording.pk,
        "media_id": world.media.pk,
        "transcription_id": world.transcription.pk,
        "item_id": world.action_item.pk,
        "webhookId": world.webhook.pk,
        "deliveryId": world.delivery.pk,
    }
    if pattern.startswith("api/calls/<call_id>"):
        values["call_id"] = str(world.uploaded.pk)
    if pattern == "api/calls/status":
        return f"/api/calls/status?ids={world.uploaded.pk}"
    if pattern.startswith("v1/live/calls/"):
        values["room_id"] = world.live_call.room.name

    def fill(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"no fixture object for <{match.group(1)}> in {pattern}"
        return values[match.group(1)]

    return "/" + re.sub(r"<(\w+)>", fill, pattern)


def _body(name: str, method: str, world: World) -> dict[str, Any]:
    """A valid body where the route takes one, so the answer is about who asks, not what."""
    token_body = {"roomId": world.room.name, "userId": "alice", "name": "Alice", "role": "participant"}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("token", "post"): token_body,
        ("token-refresh", "post"): token_body,
        ("rooms", "post"): {"name": "new-room"},
        ("room-member", "put"): {"powerLevel": 0},
        ("room-participant-mute", "post"): {"trackSid": world.track_sid, "muted": True},
        ("call-initiate", "post"): {"room_id": world.huddle.name if world.huddle else "", "type": "audio"},
        ("live-calls", "post"): {"host_user_id": "dave", "title": "Weekly"},
        ("webhooks", "post"): {"url": "https://hooks.example.com/new", "events": ["*"]},
        ("webhook", "patch"): {"enabled": False},
        ("action-item-detail", "patch"): {"done": True},
        ("call-speakers", "patch"): {"speakers": {"S1": "Alice"}},
        ("calls", "delete"): {"callIds": [str(world.uploaded.pk)]},
        ("room-transcription-speakers", "patch"): {"participants": {"alice": "Alice"}},
    }
    return bodies.get((name, method), {})


def _send(client: APIClient, method: str, path: str, body: dict[str, Any], name: str) -> int:
    if name == "call-analyze":
        upload = io.BytesIO(tone_wav(0.2))
        upload.name = "call.wav"
        return client.post(path, {"file": upload}, format="multipart").status_code
    if method == "get":
        return client.get(path).status_code
    return getattr(client, method)(path, body, format="json").status_code


# ---------------------------------------------------------------------------------------------
# tests

ROUTES = api_routes()
CASES = [(r.name, r.pattern, m) for r in ROUTES for m in r.methods]


def test_the_url_conf_walk_finds_the_api():
    names = {r.name for r in ROUTES}
    assert {"rooms", "call-join", "recording-detail", "webhooks", "call-analyze", "health"} <= names
    assert len(CASES) > 60


def test_every_api_route_has_a_row():
    missing = [f"{m.upper()} /{pattern} ({name})" for name, pattern, m in CASES if (name, m) not in EXPECTED]
    assert not missing, "routes without a row in EXPECTED:\n" + "\n".join(missing)
    stale = sorted(set(EXPECTED) - {(name, method) for name, _, method in CASES})
    assert not stale, f"rows for routes that no longer exist: {stale}"


def test_every_row_names_every_persona():
    incomplete = {
        key: sorted(set(PERSONAS) ^ set(codes)) for key, codes in EXPECTED.items() if set(codes) != set(PERSONAS)
    }
    assert not incomplete


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "pattern", "method"), CASES, ids=[f"{m.upper()} {p}" for _, p, m in CASES])
def test_permission_matrix(name, pattern, method, acme, globex, livekit, settings):  # noqa: F811
    settings.THROTTLE_USER_RATE = "100000/min"
    world = _world(acme, globex)
    _livekit_state(name, world, livekit)
    path = _path(pattern, world)
    body = _body(name, method, world)
    actual: dict[str, int] = {}
    changed: list[str] = []
    for persona in PERSONAS:
        with transaction.atomic():
            before = _fingerprint(world)
            actual[persona] = _send(world.clients[persona], method, path, body, name)
            # A refused request changes nothing, and callers from outside the room or tenant change nothing of it
            # even when they get a 2xx (their own lists, uploads and live calls are not in the fingerprint).
            if (actual[persona] >= 400 or persona in FOREIGN) and _fingerprint(world) != before:
                changed.append(persona)
            transaction.set_rollback(True)
    assert not changed, f"{method.upper()} {path} changed acme's objects for {changed}: {actual}"
    if os.environ.get("PERMISSION_MATRIX_DISCOVER"):
        print(f"\nMATRIX {name} {method} {actual}")
        return
    expected = EXPECTED.get((name, method))
    if expected is None:
        pytest.fail(f"no row for {method.upper()} /{pattern}; it answered {actual}")
    wrong = {p: (actual[p], sorted(expected[p])) for p in PERSONAS if actual[p] not in expected[p]}
    assert not wrong, f"{method.upper()} {path}: persona -> (got, expected) {wrong}"
