"""Create the S3/MinIO bucket named by S3_BUCKET if it does not exist (the compose file's `createbucket` step)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the object-storage bucket (S3_BUCKET) if missing; idempotent. The bucket stays private."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.S3_BUCKET:
            raise CommandError("S3_BUCKET is not set: media is on the local folder, there is no bucket to create.")
        client = boto3.client(
            "s3",
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
            aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
            region_name=settings.S3_REGION,
        )
        try:
            client.head_bucket(Bucket=settings.S3_BUCKET)
            self.stdout.write(f"bucket {settings.S3_BUCKET} exists")
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise CommandError(f"bucket {settings.S3_BUCKET}: {exc}") from exc
        # us-east-1 takes no location constraint; every other region needs one.
        if settings.S3_REGION == "us-east-1":
            client.create_bucket(Bucket=settings.S3_BUCKET)
        else:
            client.create_bucket(
                Bucket=settings.S3_BUCKET,
                CreateBucketConfiguration={"LocationConstraint": settings.S3_REGION},
            )
        self.stdout.write(f"bucket {settings.S3_BUCKET} created")
