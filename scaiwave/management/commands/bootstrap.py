"""Ensure a tenant exists and print its credentials as one JSON line (`--json`)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from scaiwave.admin_support import support_group_sync
from scaiwave.models import Tenant
from scaiwave.services import tenant_create


class Command(BaseCommand):
    help = "Create the demo tenant if missing (or a named one with --tenant) and print its credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--tenant", default="demo", help="tenant name (default: demo)")

    def handle(self, *args: Any, **options: Any) -> None:
        # The read-only staff group operators hand to support people (docs/admin.md).
        support_group_sync()
        name = options["tenant"]
        tenant = Tenant.objects.filter(name=name).first()
        created = tenant is None
        if tenant is None:
            tenant, secret = tenant_create(name=name)
        else:
            secret = tenant.api_secret
        payload = {
            "tenant": tenant.name,
            "tenant_id": tenant.pk,
            "created": created,
            "api_key": tenant.api_key_id,
            "api_secret": secret,
            "base_url": settings.PUBLIC_BASE_URL,
            "docs_url": f"{settings.PUBLIC_BASE_URL}/v1/docs",
            "admin_url": f"{settings.PUBLIC_BASE_URL}/admin/",
            "livekit_url": settings.LIVEKIT_PUBLIC_URL,
            "livekit_emulator": settings.LIVEKIT_USES_EMULATOR,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload))
        else:
            for key, value in payload.items():
                self.stdout.write(f"{key:>16}: {value}")
