"""Recordings test setup: LiveKit through the emulator, S3 through moto's server over HTTP, or a local folder.

Personas in room "standup" of acme: alice (power 0), dave (power 50, may record); mallory is an acme
user outside the room; globex is another tenant.

The emulator writes local egress files into `media_root`, which is also MEDIA_ROOT for the local
storage tests (as `make run` does). End-to-end tests use `live_server` so the emulator's signed
webhooks reach the real intake at /v1/calls/webhook.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from livekit_emulator.testing import EmulatorProcess, free_port
from recordings.models import Recording
from rooms.models import Room, RoomMember
from scaiwave.celery import app as celery_app
from scaiwave.testing import TenantCreds

MEMBERS = {"alice": 0, "dave": 50}
BUCKET = "scaiwave-test"
S3_KEY, S3_SECRET = "testing-access-key", "testing-secret-key"


def make_room(creds: TenantCreds, name: str, members: dict[str, int]) -> Room:
    room = Room.objects.create(tenant=creds.tenant, name=name, livekit_name=Room.livekit_name_for(creds.tenant, name))
    for sub, power in members.items():
        RoomMember.objects.create(room=room, user=creds.user_row(sub, name=sub.title()), power_level=power)
    return room


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings-media")


@pytest.fixture(scope="session")
def emulator(media_root: Path) -> Iterator[EmulatorProcess]:
    env = {"EMULATOR_FILE_OUTPUT_DIR": str(media_root), "EMULATOR_EGRESS_START_DELAY": "0.2"}
    with EmulatorProcess(env=env, api_secret="recordings-test-secret-long-enough-for-hs256") as process:
        yield process


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def livekit(emulator: EmulatorProcess, settings: Any) -> EmulatorProcess:
    """ScaiWave pointed at a clean emulator."""
    emulator.control.reset()
    emulator.control.config(webhook_urls=[])
    settings.LIVEKIT_URL = emulator.url
    settings.LIVEKIT_PUBLIC_URL = emulator.ws_url
    settings.LIVEKIT_API_KEY = emulator.api_key
    settings.LIVEKIT_API_SECRET = emulator.api_secret
    return emulator


@pytest.fixture
def slow_egress(livekit: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """Egress stays STARTING for 5 s, so a stop lands before it is active whatever the machine's load."""
    livekit.control.config(egress_start_delay=5.0)
    yield livekit
    livekit.control.config(egress_start_delay=0.3)


@pytest.fixture
def livekit_down(settings: Any) -> None:
    """ScaiWave pointed at a port where nothing listens."""
    settings.LIVEKIT_URL = f"http://127.0.0.1:{free_port()}"
    settings.LIVEKIT_API_KEY = "devkey"
    settings.LIVEKIT_API_SECRET = "a-secret-long-enough-for-hs256-signatures"
    settings.LIVEKIT_TIMEOUT = 0.5


@pytest.fixture
def local_storage(settings: Any, media_root: Path) -> Iterator[Path]:
    """Media on the local folder the emulator writes into."""
    settings.S3_BUCKET = ""
    settings.MEDIA_ROOT = media_root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media_root)}},
    }
    yield media_root
    shutil.rmtree(media_root / "recordings", ignore_errors=True)


@pytest.fixture
def s3_storage(settings: Any, moto_server: str) -> Any:
    """Media in a fresh bucket on moto's S3 server; LiveKit's egress uploads there too. Returns a boto3 client."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_server,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.S3_BUCKET = BUCKET
    settings.S3_ENDPOINT_URL = moto_server
    settings.S3_ACCESS_KEY_ID = S3_KEY
    settings.S3_SECRET_ACCESS_KEY = S3_SECRET
    settings.S3_REGION = "us-east-1"
    settings.S3_FORCE_PATH_STYLE = True
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": moto_server,
                "access_key": S3_KEY,
                "secret_key": S3_SECRET,
                "region_name": "us-east-1",
                "addressing_style": "path",
                "querystring_expire": 600,
                "file_overwrite": False,
            },
        },
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery tasks run where they are queued (after commit), so a test sees their effect."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def webhooks_to_scaiwave(livekit: EmulatorProcess, live_server: Any, settings: Any, eager_tasks: None) -> Any:
    """The emulator's webhooks reach ScaiWave's intake over HTTP; download URLs point at the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    livekit.control.config(webhook_urls=[live_server.url + "/v1/calls/webhook"])
    return live_server


@pytest.fixture
def standup(acme: TenantCreds) -> Room:
    return make_room(acme, "standup", MEMBERS)


def join_and_talk(emulator: EmulatorProcess, livekit_room: str, *, seconds: float = 12.0) -> list[str]:
    """alice and dave connect to the LiveKit room and each publish a tone; returns the track sids."""
    sids = []
    for identity, frequency in (("alice", 440.0), ("dave", 660.0)):
        emulator.control.connect(emulator.token(identity, livekit_room, can_publish=True))
        published = emulator.control.publish(livekit_room, identity, tone={"frequency": frequency, "seconds": seconds})
        sids.append(str(published["sid"]))
    return sids


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_for_status(recording_id: str, *statuses: str, timeout: float = 20.0) -> Recording:
    def reached() -> Recording | None:
        recording = Recording.objects.get(pk=recording_id)
        return recording if recording.status in statuses else None

    try:
        return wait_for(reached, timeout)
    except TimeoutError:
        current = Recording.objects.get(pk=recording_id)
        raise AssertionError(f"recording stayed {current.status} ({current.failure_reason})") from None
