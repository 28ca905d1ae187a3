"""Replace a tenant's API secret and print the new one once."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scaiwave.models import Tenant
from scaiwave.services import tenant_rotate_secret


class Command(BaseCommand):
    help = "Rotate a tenant's API secret; the old one stops working in every web process within 5 s."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(name=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant named {options['tenant']!r}")
        secret = tenant_rotate_secret(tenant=tenant)
        if options["json"]:
            self.stdout.write(json.dumps({"tenant": tenant.name, "api_key": tenant.api_key_id, "api_secret": secret}))
        else:
            self.stdout.write(f"new secret for {tenant.name}: {secret}")
