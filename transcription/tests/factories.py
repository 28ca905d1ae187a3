"""Rows a post-call job needs: a room, a finished recording and its stored files."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from calls.models import Call
from recordings.models import MediaEntry, Recording, RecordingEgress
from rooms.models import Room
from scaiwave.models import Tenant, TenantUser


def room_make(tenant: Tenant, name: str = "standup") -> Room:
    return Room.objects.create(tenant=tenant, name=name, livekit_name=Room.livekit_name_for(tenant, name))


def call_make(room: Room, initiator: TenantUser) -> Call:
    now = timezone.now()
    return Call.objects.create(
        tenant=room.tenant,
        room=room,
        type="audio",
        status="ended",
        initiator=initiator,
        ring_expires_at=now + timedelta(seconds=45),
        livekit_room=f"scaiwave-call-{room.pk}",
        started_at=now,
        ended_at=now,
    )


def recording_make(
    room: Room, *, status: str = "ready", transcript: bool = True, call: Call | None = None
) -> Recording:
    return Recording.objects.create(
        tenant=room.tenant,
        room=room,
        call=call,
        status=status,
        transcript=transcript,
        livekit_room=room.livekit_name,
        storage_key=f"recordings/{room.name}/composite.mp4",
        started_at=timezone.now(),
    )


def _store(recording: Recording, path: Path, key: str, egress: RecordingEgress | None = None) -> MediaEntry:
    data = path.read_bytes()
    stored = default_storage.save(key, ContentFile(data))
    return MediaEntry.objects.create(
        tenant=recording.tenant,
        key=stored,
        content_type="audio/ogg" if path.suffix == ".ogg" else "audio/wav",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source="egress",
        recording=recording,
        egress=egress,
    )


def composite_add(recording: Recording, path: Path) -> MediaEntry:
    return _store(recording, path, f"recordings/{recording.pk}/composite{path.suffix}")


def track_add(
    recording: Recording, path: Path, *, identity: str, track_sid: str, started_after: float, name: str = ""
) -> MediaEntry:
    egress = RecordingEgress.objects.create(
        recording=recording,
        egress_id=f"EG_{track_sid}",
        kind="track_audio",
        track_sid=track_sid,
        participant_identity=identity,
        participant_name=name,
        status="complete",
        created_at=(recording.started_at or timezone.now()) + timedelta(seconds=started_after),
    )
    return _store(recording, path, f"recordings/{recording.pk}/{track_sid}{path.suffix}", egress)
