from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from scaiwave.admin_support import support_group_sync


class Command(BaseCommand):
    help = 'Create or refresh the read-only "support" staff group (view permissions only).'

    def handle(self, *args: Any, **options: Any) -> None:
        group = support_group_sync()
        self.stdout.write(f"{group.name}: {group.permissions.count()} view permissions")
