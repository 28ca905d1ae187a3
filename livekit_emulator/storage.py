"""Where finished egress files go: an S3-compatible bucket (boto3) or the local output folder."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from livekit.protocol import egress as proto

from .filepath import safe_local_path

CONTENT_TYPES = {".mp4": "video/mp4", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


class UploadError(RuntimeError):
    """The upload step failed; the egress ends FAILED with this text as ``error``."""


def s3_location(upload: proto.S3Upload, key: str) -> str:
    """The FileInfo.location livekit/storage reports for an S3 object (livekit.md §4.4)."""
    if not upload.endpoint:
        return f"https://{upload.bucket}.s3.amazonaws.com/{key}"
    endpoint = upload.endpoint.rstrip("/")
    if upload.force_path_style:
        return f"{endpoint}/{upload.bucket}/{key}"
    host = urlparse(endpoint).netloc or endpoint
    return f"https://{upload.bucket}.{host}/{key}"


def _s3_put(local: Path, key: str, upload: proto.S3Upload) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=upload.endpoint or None,
        aws_access_key_id=upload.access_key or None,
        aws_secret_access_key=upload.secret or None,
        aws_session_token=upload.session_token or None,
        region_name=upload.region or "us-east-1",
        config=Config(
            s3={"addressing_style": "path" if upload.force_path_style else "auto"},
            retries={"max_attempts": 2},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    extra: dict[str, Any] = {"ContentType": CONTENT_TYPES.get(local.suffix, "application/octet-stream")}
    if upload.metadata:
        extra["Metadata"] = dict(upload.metadata)
    if upload.tagging:
        extra["Tagging"] = upload.tagging
    if upload.content_disposition:
        extra["ContentDisposition"] = upload.content_disposition
    client.upload_file(str(local), upload.bucket, key, ExtraArgs=extra)


async def store(local: Path, filename: str, output: Any, output_dir: Path) -> str:
    """Store ``local`` as ``filename`` according to ``output`` (EncodedFileOutput or DirectFileOutput).

    Returns the FileInfo location. Raises UploadError when the upload fails or the storage kind is not emulated.
    """
    which = output.WhichOneof("output") if output is not None else None
    if which == "s3":
        key = filename.lstrip("/")
        try:
            await asyncio.to_thread(_s3_put, local, key, output.s3)
        except Exception as exc:  # boto3 raises many unrelated types; all of them mean the upload failed
            raise UploadError(f"failed to upload to s3: {exc}") from exc
        return s3_location(output.s3, key)
    if which is not None:
        raise UploadError(f"{which} uploads are not supported by the emulator")
    destination = (output_dir / safe_local_path(filename)).resolve()
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.move, str(local), str(destination))
    except OSError as exc:
        raise UploadError(f"failed to write {destination}: {exc}") from exc
    return str(destination)
