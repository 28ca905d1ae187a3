"""A Room outlives its LiveKit room (a session); only a scheduled live call's room closes with it."""

from django.db import migrations, models


def live_call_rooms_close_with_their_session(apps, schema_editor):
    # Rooms made by calls.live_services.live_call_create: `live-<uuid>` with the live call's id in the metadata.
    Room = apps.get_model("rooms", "Room")
    Room.objects.filter(name__startswith="live-", metadata__contains='"live_call_id"').update(
        closes_with_livekit_room=True
    )


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0002_roomban_roomparticipant"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="closes_with_livekit_room",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="room",
            name="livekit_finished_sid",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="room",
            name="empty_timeout",
            field=models.PositiveIntegerField(
                default=0, help_text="seconds LiveKit keeps the empty media session; 0 = LiveKit's default"
            ),
        ),
        migrations.RunPython(live_call_rooms_close_with_their_session, migrations.RunPython.noop),
    ]
