"""The read-only "support" staff group: view permission on every ScaiWave model, nothing else.

Support staff look (calls, participants, recordings, deliveries, LiveKit events) but cannot act: every admin
action and object button requires the model's change permission, which this group never has. Re-run
`manage.py support_group` after migrations that add models; it is idempotent.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

SUPPORT_GROUP = "support"
DOMAIN_APPS = ("scaiwave", "rooms", "calls", "recordings", "transcription", "webhooks")


@transaction.atomic
def support_group_sync() -> Group:
    """Create or refresh the group so it holds exactly the view permissions of the domain apps' models."""
    for label in DOMAIN_APPS:
        if apps.is_installed(label):
            # Permissions are normally created after `migrate`; make sure they exist before we grant them.
            create_permissions(apps.get_app_config(label), verbosity=0)
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    views = Permission.objects.filter(content_type__app_label__in=DOMAIN_APPS, codename__startswith="view_")
    group.permissions.set(views)
    return group
