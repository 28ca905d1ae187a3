"""Request and response shapes of the live transcription endpoints (document 001, camelCase)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from rooms.services import iso_ms
from scaiwave.api.fields import StringKeyDictField
from transcription.models import Transcription


def _iso(value: Any) -> str | None:
    return iso_ms(value) if value else None


class LiveOptionsSerializer(serializers.Serializer):
    partialResults = serializers.BooleanField(
        required=False, default=False, help_text="Also send partial segments (final false) while a speaker talks"
    )
    punctuation = serializers.BooleanField(required=False, default=True, help_text="Keep punctuation; false strips it")
    profanityFilter = serializers.BooleanField(
        required=False, default=False, help_text="Mask the operator's word list as ***"
    )


def _speaker_map() -> serializers.DictField:
    return StringKeyDictField(
        child=serializers.CharField(max_length=256),
        help_text='Speaker identity map: {"<track sid or participant identity>": "Alice"}',
    )


class LiveStartRequestSerializer(serializers.Serializer):
    language = serializers.CharField(max_length=35, required=False, default="en-US", help_text="BCP-47 language code")
    participants = _speaker_map()
    options = LiveOptionsSerializer(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["participants"].required = False
        self.fields["participants"].default = dict

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "options" not in attrs:
            attrs["options"] = {"partialResults": False, "punctuation": True, "profanityFilter": False}
        return attrs


class LiveSpeakersRequestSerializer(serializers.Serializer):
    participants = _speaker_map()


class LiveStartedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="pk")
    roomId = serializers.CharField(source="room.name")
    status = serializers.CharField()
    language = serializers.CharField()
    startedAt = serializers.SerializerMethodField()

    def get_startedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.started_at)


class LiveStoppedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="pk")
    status = serializers.CharField()
    stoppedAt = serializers.SerializerMethodField()
    segmentCount = serializers.SerializerMethodField()

    def get_stoppedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.stopped_at)

    def get_segmentCount(self, obj: Transcription) -> int:
        return obj.segments.count()


class LiveSegmentSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    start = serializers.FloatField(help_text="Seconds since the session started")
    end = serializers.FloatField()
    text = serializers.CharField()
    speaker = serializers.CharField(help_text="Display name (speaker map, else the user's name, else identity)")
    speakerLabel = serializers.CharField(help_text="The participant identity")
    trackSid = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    createdAt = serializers.CharField(help_text="When the segment was stored (what `since` filters on)")


class LiveTranscriptSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField()
    roomId = serializers.CharField()
    status = serializers.ChoiceField(choices=["active", "stopped"])
    language = serializers.CharField()
    health = serializers.ChoiceField(
        choices=["ok", "degraded"],
        help_text="degraded: the recognizer fell behind and dropped audio, or a track "
        "could not be streamed; healthDetail says what and when",
    )
    healthDetail = serializers.CharField(allow_null=True)
    participants = serializers.DictField(child=serializers.CharField())
    options = LiveOptionsSerializer()
    startedAt = serializers.CharField()
    stoppedAt = serializers.CharField(allow_null=True)
    segments = LiveSegmentSerializer(many=True)
