"""`manage.py ensure_bucket`: the compose file's bucket step, against an S3 server over HTTP (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import boto3
import pytest
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer


@pytest.fixture
def s3_endpoint(settings: Any) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings.S3_ENDPOINT_URL = f"http://{host}:{port}"
    settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY = "bucket-test-key", "bucket-test-secret"
    settings.S3_REGION = "us-east-1"
    settings.S3_BUCKET = "scaiwave-deploy-test"
    yield settings.S3_ENDPOINT_URL
    server.stop()


def test_creates_the_bucket_once_and_is_idempotent(s3_endpoint: str) -> None:
    first, second = StringIO(), StringIO()
    call_command("ensure_bucket", stdout=first)
    call_command("ensure_bucket", stdout=second)

    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="k", aws_secret_access_key="s")
    # moto's servers in one process share their buckets, so other tests' buckets may be listed beside ours.
    assert "scaiwave-deploy-test" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert "created" in first.getvalue()
    assert "exists" in second.getvalue()


def test_without_a_bucket_setting_it_says_there_is_nothing_to_create(settings: Any) -> None:
    settings.S3_BUCKET = ""
    with pytest.raises(CommandError, match="S3_BUCKET"):
        call_command("ensure_bucket")
