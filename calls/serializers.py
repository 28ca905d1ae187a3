"""Request and response shapes of the ScaiWave calls surface (document 000)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls.fields import StrictCharField
from calls.models import Call, CallParticipant, TimelineEntry
from calls.selectors import call_recordings


class InitiateRequestSerializer(serializers.Serializer):
    room_id = StrictCharField(
        max_length=200, trim_whitespace=False, help_text="The room's id as the rooms API names it (roomId)"
    )
    type = serializers.ChoiceField(choices=Call.Type.choices)


class CallTicketSerializer(serializers.Serializer):
    """What a client needs to connect to the call's LiveKit room."""

    call_id = serializers.CharField()
    livekit_url = serializers.CharField()
    livekit_token = serializers.CharField()
    livekit_room = serializers.CharField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "call_id": instance.call.pk,
            "livekit_url": instance.livekit_url,
            "livekit_token": instance.livekit_token,
            "livekit_room": instance.livekit_room,
        }


class CallParticipantSerializer(serializers.ModelSerializer):
    participant_id = serializers.CharField(source="user.external_id", help_text="The user's id in the host app")
    left_at = serializers.DateTimeField(allow_null=True, help_text="Set when this participant has left")

    class Meta:
        model = CallParticipant
        fields = ["participant_id", "joined_at", "video_on", "audio_on", "left_at"]


class MediaReferenceSerializer(serializers.Serializer):
    """A finished recording as the recordings app describes it (a media reference)."""

    id = serializers.CharField()
    contentType = serializers.CharField()
    size = serializers.IntegerField()
    durationSeconds = serializers.FloatField(allow_null=True)
    url = serializers.CharField(help_text="A signed download URL")
    urlExpiresAt = serializers.DateTimeField()
    recordingId = serializers.CharField()


class CallStateSerializer(serializers.ModelSerializer):
    room_id = serializers.CharField(source="room.name")
    initiator_id = serializers.CharField(source="initiator.external_id")
    participants = serializers.SerializerMethodField(help_text="Everyone who has connected to the call")
    recordings = serializers.SerializerMethodField(help_text="Finished recordings as media references")

    class Meta:
        model = Call
        fields = [
            "id",
            "room_id",
            "type",
            "status",
            "started_at",
            "ended_at",
            "initiator_id",
            "participants",
            "recordings",
        ]

    @extend_schema_field(CallParticipantSerializer(many=True))
    def get_participants(self, call: Call) -> list[dict[str, Any]]:
        # Prefetched by the selectors: filter in Python to keep it one query.
        joined = [p for p in call.participants.all() if p.joined_at is not None]
        joined.sort(key=lambda p: (p.joined_at, p.pk))
        return list(CallParticipantSerializer(joined, many=True).data)

    @extend_schema_field(MediaReferenceSerializer(many=True))
    def get_recordings(self, call: Call) -> list[dict[str, Any]]:
        return call_recordings(call=call)


class CallHistoryItemSerializer(CallStateSerializer):
    class Meta(CallStateSerializer.Meta):
        fields = [*CallStateSerializer.Meta.fields, "created_at", "end_reason"]


class TimelineEntrySerializer(serializers.ModelSerializer):
    call_id = serializers.CharField(allow_null=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "kind", "call_id", "data", "created_at"]


class ListQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, allow_blank=True)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100)


class CallListQuerySerializer(ListQuerySerializer):
    status = serializers.ChoiceField(choices=Call.Status.choices, required=False)
