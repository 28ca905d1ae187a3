"""Request and response shapes of the post-call transcription endpoints (document 001, camelCase)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rooms.services import iso_ms
from scaiwave.api.fields import StringKeyDictField
from transcription.models import Transcription, TranscriptSegment


def _iso(value: Any) -> str | None:
    """As document 001 writes times: UTC, milliseconds, `Z`."""
    return iso_ms(value) if value else None


class TranscribeRequestSerializer(serializers.Serializer):
    language = serializers.CharField(
        max_length=35, required=False, default="en-US", help_text="BCP-47 language code; `auto` detects it"
    )
    participants = StringKeyDictField(
        child=serializers.CharField(max_length=256),
        required=False,
        default=dict,
        help_text='Speaker map: {"<track sid or participant identity>": "Alice"} for per-participant tracks; '
        '{"Speaker 1": "Agent", "Speaker 2": "Caller"} for a mixed or stereo file',
    )


class TranscriptionQueuedSerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="pk")
    recordingId = serializers.CharField(source="recording_id", allow_null=True)
    status = serializers.CharField()
    queuedAt = serializers.SerializerMethodField()

    def get_queuedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.created_at)


class TranscriptionSummarySerializer(serializers.Serializer):
    transcriptionId = serializers.CharField(source="pk")
    recordingId = serializers.CharField(source="recording_id", allow_null=True)
    mediaEntryId = serializers.CharField(source="media_entry_id", allow_null=True)
    status = serializers.ChoiceField(choices=Transcription.Status.choices)
    language = serializers.CharField(help_text="As requested (BCP-47)")
    detectedLanguage = serializers.CharField(source="detected_language", help_text="What the recognizer heard")
    model = serializers.CharField()
    progress = serializers.IntegerField(help_text="Percent of the audio done")
    duration = serializers.FloatField(allow_null=True, help_text="Seconds of audio")
    segmentCount = serializers.SerializerMethodField()
    error = serializers.CharField(allow_null=True, source="error_or_none")
    queuedAt = serializers.SerializerMethodField()
    startedAt = serializers.SerializerMethodField()
    completedAt = serializers.SerializerMethodField()

    def get_segmentCount(self, obj: Transcription) -> int:
        count = getattr(obj, "segment_count", None)
        return int(count) if count is not None else obj.segments.count()

    def get_queuedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.created_at)

    def get_startedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.started_at)

    def get_completedAt(self, obj: Transcription) -> str | None:
        return _iso(obj.completed_at)


class WordSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField()
    text = serializers.CharField()
    probability = serializers.FloatField()


class SegmentSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    start = serializers.FloatField()
    end = serializers.FloatField()
    text = serializers.CharField()
    speaker = serializers.CharField(source="speaker_name", help_text="Display name")
    speakerLabel = serializers.CharField(source="speaker_label", help_text="Participant identity or 'Speaker n'")
    confidence = serializers.FloatField(allow_null=True)
    words = WordSerializer(many=True)


class TranscriptionDetailSerializer(TranscriptionSummarySerializer):
    participants = serializers.DictField(source="speaker_map", child=serializers.CharField())
    segments = serializers.SerializerMethodField()

    @extend_schema_field(SegmentSerializer(many=True))
    def get_segments(self, obj: Transcription) -> list[dict[str, Any]]:
        segments: list[TranscriptSegment] = self.context.get("segments", [])
        return list(SegmentSerializer(segments, many=True).data)
