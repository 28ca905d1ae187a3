"""Tenants get the prefix of their LiveKit room names. Existing tenants keep the `<id>--` their rooms were
created with, so their rooms and the tokens of their clients keep meeting in the same LiveKit rooms."""

from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat


def existing_tenants_keep_their_prefix(apps, schema_editor):
    Tenant = apps.get_model("scaiwave", "Tenant")
    Tenant.objects.update(livekit_room_prefix=Concat(F("id"), Value("--")))


class Migration(migrations.Migration):
    dependencies = [
        ("scaiwave", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="livekit_room_prefix",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(existing_tenants_keep_their_prefix, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.UniqueConstraint(
                condition=models.Q(("livekit_room_prefix", "")),
                fields=("livekit_room_prefix",),
                name="one_tenant_without_livekit_room_prefix",
            ),
        ),
    ]
