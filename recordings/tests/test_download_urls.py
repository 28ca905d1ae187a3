"""Presigned download URLs point at the endpoint browsers reach, not the object store's internal name."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from recordings import storage
from recordings.tests.conftest import BUCKET

pytestmark = pytest.mark.django_db

KEY = "recordings/call-1/20260101T000000.mp4"


def test_presigned_url_uses_the_public_endpoint_and_downloads_the_object(s3_storage: Any, settings: Any) -> None:
    s3_storage.put_object(Bucket=BUCKET, Key=KEY, Body=b"the recording")
    # The same server under another name, as a TLS front would publish MinIO.
    public = settings.S3_ENDPOINT_URL.replace("127.0.0.1", "localhost")
    settings.S3_PUBLIC_ENDPOINT_URL = public

    url, _ = storage.download_url(entry_id="me_1", key=KEY)

    assert url.startswith(f"{public}/{BUCKET}/{KEY}?")
    assert "Signature=" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"the recording"


def test_workers_keep_reading_through_the_internal_endpoint(s3_storage: Any, settings: Any) -> None:
    settings.S3_PUBLIC_ENDPOINT_URL = "https://files.example.test"
    internal = urlsplit(settings.S3_ENDPOINT_URL).netloc

    assert urlsplit(storage._presigned_url(KEY, 60)).netloc == internal
    assert urlsplit(storage.download_url(entry_id="me_1", key=KEY)[0]).netloc == "files.example.test"


def test_without_a_public_endpoint_urls_use_the_configured_endpoint(s3_storage: Any, settings: Any) -> None:
    settings.S3_PUBLIC_ENDPOINT_URL = ""

    url, _ = storage.download_url(entry_id="me_1", key=KEY)

    assert urlsplit(url).netloc == urlsplit(settings.S3_ENDPOINT_URL).netloc
