"""Input and output shapes of the recording endpoints (documents 000 and 001, and ours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from recordings import selectors
from recordings.models import Recording, RecordingEgress
from rooms.services import iso_ms


def iso(moment: datetime | None) -> str | None:
    """Every time as document 001 writes it: UTC, milliseconds, `Z` (2025-01-01T12:00:00.000Z)."""
    return iso_ms(moment) if moment else None


class RecordingStartRequestSerializer(serializers.Serializer):
    """Document 000's body: what to record. Both flags false is not a recording."""

    audio = serializers.BooleanField(default=True)
    video = serializers.BooleanField(default=True)
    transcript = serializers.BooleanField(default=False, help_text="Transcribe the recording once it is ready")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs["audio"] and not attrs["video"]:
            raise serializers.ValidationError({"audio": "Record audio, video or both."})
        return attrs


class MediaReferenceSerializer(serializers.Serializer):
    """A stored file and a time-limited URL to fetch it (presigned S3, or signed ScaiWave URL with Range)."""

    id = serializers.CharField(help_text="me_…")
    contentType = serializers.CharField()
    size = serializers.IntegerField(help_text="bytes")
    durationSeconds = serializers.FloatField(allow_null=True)
    url = serializers.URLField()
    urlExpiresAt = serializers.DateTimeField()


class CallMediaReferenceSerializer(MediaReferenceSerializer):
    recordingId = serializers.CharField(help_text="rec_…")


class RecordingEgressSerializer(serializers.Serializer):
    egressId = serializers.CharField(source="egress_id")
    kind = serializers.ChoiceField(choices=RecordingEgress.Kind.choices)
    status = serializers.ChoiceField(choices=RecordingEgress.Status.choices)
    error = serializers.CharField(allow_blank=True, help_text="LiveKit's error text when it failed")
    trackSid = serializers.CharField(source="track_sid", allow_blank=True)
    participantIdentity = serializers.CharField(source="participant_identity", allow_blank=True)


class RecordingSerializer(serializers.Serializer):
    """A recording's state, its failure reason and its files (ours: GET /v1/recordings/{id})."""

    id = serializers.CharField(help_text="rec_…")
    status = serializers.ChoiceField(choices=Recording.Status.choices)
    failureReason = serializers.SerializerMethodField()
    roomId = serializers.SerializerMethodField()
    callId = serializers.CharField(source="call_id", allow_null=True)
    egressId = serializers.SerializerMethodField()
    audio = serializers.BooleanField()
    video = serializers.BooleanField()
    transcript = serializers.BooleanField()
    storageKey = serializers.CharField(source="storage_key")
    requestedBy = serializers.SerializerMethodField()
    createdAt = serializers.SerializerMethodField()
    startedAt = serializers.SerializerMethodField()
    stoppedAt = serializers.SerializerMethodField()
    finishedAt = serializers.SerializerMethodField()
    egresses = RecordingEgressSerializer(many=True)
    media = serializers.SerializerMethodField()

    def get_failureReason(self, recording: Recording) -> str | None:
        return recording.failure_reason or None

    def get_roomId(self, recording: Recording) -> str:
        return recording.room.name

    def get_egressId(self, recording: Recording) -> str | None:
        composite = selectors.composite_egress(recording)
        return composite.egress_id if composite else None

    def get_requestedBy(self, recording: Recording) -> str | None:
        return recording.requested_by.external_id if recording.requested_by else None

    def get_createdAt(self, recording: Recording) -> str | None:
        return iso(recording.created_at)

    def get_startedAt(self, recording: Recording) -> str | None:
        return iso(recording.started_at)

    def get_stoppedAt(self, recording: Recording) -> str | None:
        return iso(recording.stopped_at)

    def get_finishedAt(self, recording: Recording) -> str | None:
        return iso(recording.finished_at)

    def get_media(self, recording: Recording) -> list[dict[str, Any]]:
        return [
            {
                **selectors.media_reference(entry),
                "kind": entry.egress.kind if entry.egress else RecordingEgress.Kind.ROOM_COMPOSITE,
                "participantIdentity": entry.egress.participant_identity if entry.egress else "",
            }
            for entry in recording.media_entries.all()
            if entry.missing_since is None
        ]


class RoomRecordingStartSerializer(serializers.Serializer):
    """Document 001's reply to POST /v1/rooms/{roomId}/recording/start."""

    egressId = serializers.CharField()
    roomId = serializers.CharField()
    status = serializers.ChoiceField(choices=["recording", "already_recording"])
    startedAt = serializers.DateTimeField()
    recordingId = serializers.CharField(help_text="ScaiWave's id for GET /v1/recordings/{id}")


class RoomRecordingStopSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["stopped"])
    stoppedAt = serializers.DateTimeField()
    recordingId = serializers.CharField()


class RoomRecordingStatusSerializer(serializers.Serializer):
    isRecording = serializers.BooleanField()
    egressId = serializers.CharField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    recordingId = serializers.CharField(allow_null=True)


def room_recording_start_data(recording: Recording, *, created: bool) -> dict[str, Any]:
    composite = selectors.composite_egress(recording)
    return {
        "egressId": composite.egress_id if composite else None,
        "roomId": recording.room.name,
        "status": "recording" if created else "already_recording",
        "startedAt": iso(recording.started_at or recording.created_at),
        "recordingId": recording.pk,
    }
