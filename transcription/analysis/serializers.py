"""Input validation and output shapes of the uploaded-call surface (camelCase, as document 002 writes them)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rest_framework import serializers

from scaiwave.api.fields import StringKeyDictField
from transcription.analysis.speakers import SEPARATION_SINGLE, speaker_by_label, speaker_names
from transcription.models import ActionItem, TranscriptSegment, UploadedCall

DIARIZATION_NOTE = (
    "Mono recording: no diarization backend is installed, so the whole recording is one speaker. "
    "Upload a stereo recording (one party per channel) to separate the two sides."
)


# A week: longer than any call, far below what breaks arithmetic (1e308 seconds was once stored and echoed).
MAX_DURATION_SECONDS = 7 * 24 * 3600


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# --- Input ----------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, naming them (a typo must not be silently dropped)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class CallMetadataSerializer(StrictSerializer):
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    contactName = serializers.CharField(max_length=200, required=False, allow_blank=True)
    contactId = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phoneNumber = serializers.CharField(max_length=64, required=False, allow_blank=True)
    organization = serializers.CharField(max_length=200, required=False, allow_blank=True)
    direction = serializers.ChoiceField(choices=UploadedCall.Direction.choices, required=False)
    recordedAt = serializers.DateTimeField(required=False)
    durationSeconds = serializers.FloatField(required=False, min_value=0, max_value=MAX_DURATION_SECONDS)

    def to_internal_value(self, data: Any) -> Any:
        # CharField would turn 42 into "42": a number where text belongs is a client bug worth reporting.
        if isinstance(data, dict):
            errors = {
                name: ["Must be a string."]
                for name in ("title", "contactName", "contactId", "phoneNumber", "organization", "direction")
                if name in data and not isinstance(data[name], str)
            }
            if "durationSeconds" in data and (
                isinstance(data["durationSeconds"], bool) or not isinstance(data["durationSeconds"], (int, float))
            ):
                errors["durationSeconds"] = ["Must be a number."]
            elif isinstance(data.get("durationSeconds"), float) and not math.isfinite(data["durationSeconds"]):
                errors["durationSeconds"] = ["Must be a finite number."]  # json.loads reads NaN and Infinity
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class AnalyzeRequestSerializer(serializers.Serializer):
    """The multipart body of POST /api/calls/analyze (for the OpenAPI document)."""

    file = serializers.FileField(help_text="The recording: wav, mp3, aac, ogg/opus, m4a, flac, amr or webm.")
    metadata = serializers.CharField(required=False, help_text="JSON envelope (CallMetadata); every field optional.")
    title = serializers.CharField(required=False, help_text="Used when metadata carries no title.")


class SpeakersUpdateSerializer(StrictSerializer):
    speakers = StringKeyDictField(
        child=serializers.CharField(max_length=200, allow_blank=False),
        allow_empty=False,
        help_text="speakerId -> the name to show",
    )


class ActionItemUpdateSerializer(StrictSerializer):
    done = serializers.BooleanField()


class BulkDeleteSerializer(StrictSerializer):
    callIds = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=100)


# --- Output ---------------------------------------------------------------------------------------


def whole_seconds(seconds: float | None) -> int | None:
    """Document 002 shows durations as whole seconds (`240`)."""
    return None if seconds is None else round(seconds)


def call_summary(call: UploadedCall) -> dict[str, Any]:
    return {
        "callId": str(call.pk),
        "title": call.title,
        "contactName": call.contact_name,
        "direction": call.direction or None,
        "status": call.status,
        "progress": call.progress,
        "durationSeconds": whole_seconds(call.duration_seconds),
        "createdAt": iso(call.created_at),
    }


def call_detail(call: UploadedCall) -> dict[str, Any]:
    return {
        "callId": str(call.pk),
        "title": call.title,
        "status": call.status,
        "progress": call.progress,
        "direction": call.direction or None,
        "contactName": call.contact_name,
        "contactId": call.contact_id,
        "phoneNumber": call.phone_number,
        "organization": call.organization,
        "durationSeconds": whole_seconds(call.duration_seconds),
        "recordedAt": iso(call.recorded_at),
        "createdAt": iso(call.created_at),
        "updatedAt": iso(call.updated_at),
        "completedAt": iso(call.completed_at),
        "errorReason": call.error_reason or None,
    }


def call_status(call: UploadedCall) -> dict[str, Any]:
    return {"callId": str(call.pk), "status": call.status, "progress": call.progress}


def speakers_out(call: UploadedCall) -> list[dict[str, Any]]:
    return [
        {key: s.get(key) for key in ("speakerId", "name", "role", "channel", "confidence", "source")}
        for s in call.speakers
    ]


def transcript_json(call: UploadedCall, segments: list[TranscriptSegment]) -> dict[str, Any]:
    by_label = speaker_by_label(call.speakers)
    transcription = call.transcription
    single = call.speaker_separation == SEPARATION_SINGLE
    return {
        "callId": str(call.pk),
        "language": (transcription.detected_language or transcription.language) if transcription else None,
        "durationSeconds": transcription.duration if transcription else call.duration_seconds,
        "speakerSeparation": call.speaker_separation,
        "diarization": {"available": False, "note": DIARIZATION_NOTE if single else None},
        "speakers": speakers_out(call),
        "segments": [
            {
                "speakerId": by_label.get(s.speaker_label, {}).get("speakerId"),
                "speaker": s.speaker_name or s.speaker_label,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
            }
            for s in segments
        ],
    }


def action_item_json(item: ActionItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "callId": str(item.call_id),
        "text": item.text,
        "owner": item.owner_name or None,
        "ownerSpeakerId": item.owner_speaker_id or None,
        "dueDate": item.due_date.isoformat() if item.due_date else None,
        "dueText": item.due_text or None,
        "atSeconds": item.at_seconds,
        "done": item.done,
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
    }


def analysis_json(call: UploadedCall, items: list[ActionItem]) -> dict[str, Any]:
    analysis = call.analysis or {}
    names = speaker_names(call.speakers)
    return {
        "callId": str(call.pk),
        "summary": analysis.get("summary", ""),
        "actionItems": [action_item_json(item) for item in items],
        "keyTopics": analysis.get("keyTopics", []),
        "talkTime": [
            {"speakerId": speaker_id, "name": names.get(speaker_id, speaker_id), "share": share}
            for speaker_id, share in analysis.get("talkTime", {}).items()
        ],
        "questions": [
            {
                "speakerId": q.get("speakerId") or None,
                "speaker": names.get(q.get("speakerId") or "", None),
                "text": q.get("text", ""),
                "atSeconds": q.get("atSeconds"),
            }
            for q in analysis.get("questions", [])
        ],
        "speakers": speakers_out(call),
        "analyzer": analysis.get("analyzer", "rules"),
    }


# --- Output schemas (OpenAPI only) ----------------------------------------------------------------


class CallAcceptedSchema(serializers.Serializer):
    callId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=UploadedCall.Status.choices)


class CallSummarySchema(serializers.Serializer):
    callId = serializers.UUIDField()
    title = serializers.CharField()
    contactName = serializers.CharField()
    direction = serializers.ChoiceField(choices=UploadedCall.Direction.choices, allow_null=True)
    status = serializers.ChoiceField(choices=UploadedCall.Status.choices)
    progress = serializers.IntegerField(help_text="percent done (0..100)")
    durationSeconds = serializers.IntegerField(allow_null=True, help_text="whole seconds")
    createdAt = serializers.DateTimeField()


class CallPageSchema(serializers.Serializer):
    items = CallSummarySchema(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class CallDetailSchema(CallSummarySchema):
    contactId = serializers.CharField()
    phoneNumber = serializers.CharField()
    organization = serializers.CharField()
    recordedAt = serializers.DateTimeField(allow_null=True)
    updatedAt = serializers.DateTimeField()
    completedAt = serializers.DateTimeField(allow_null=True)
    errorReason = serializers.CharField(allow_null=True)


class CallStatusSchema(serializers.Serializer):
    callId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=UploadedCall.Status.choices)
    progress = serializers.IntegerField()


class CallStatusListSchema(serializers.Serializer):
    items = CallStatusSchema(many=True)
    missing = serializers.ListField(child=serializers.CharField(), help_text="ids that are not the caller's calls")


class BulkDeleteResultSchema(serializers.Serializer):
    deleted = serializers.IntegerField()
    missing = serializers.IntegerField()
    failed = serializers.ListField(child=serializers.DictField(), help_text='[{"callId", "reason"}]')


class SpeakerSchema(serializers.Serializer):
    speakerId = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["user", "contact", "mixed"])
    channel = serializers.ChoiceField(choices=["left", "right", "mixed"])
    confidence = serializers.FloatField()
    # A field named like Field.source: DRF's metaclass takes it as a declared field all the same.
    source = serializers.CharField()  # type: ignore[assignment]


class SpeakersResultSchema(serializers.Serializer):
    speakers = SpeakerSchema(many=True)


class TranscriptSegmentSchema(serializers.Serializer):
    speakerId = serializers.CharField(allow_null=True)
    speaker = serializers.CharField()
    start = serializers.FloatField()
    end = serializers.FloatField()
    text = serializers.CharField()


class TranscriptSchema(serializers.Serializer):
    callId = serializers.UUIDField()
    language = serializers.CharField(allow_null=True)
    durationSeconds = serializers.FloatField(allow_null=True)
    speakerSeparation = serializers.ChoiceField(choices=["stereo_channels", "single_speaker"])
    diarization = serializers.DictField()
    speakers = SpeakerSchema(many=True)
    segments = TranscriptSegmentSchema(many=True)


class ActionItemSchema(serializers.Serializer):
    id = serializers.CharField()
    callId = serializers.UUIDField()
    text = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    ownerSpeakerId = serializers.CharField(allow_null=True)
    dueDate = serializers.DateField(allow_null=True)
    dueText = serializers.CharField(allow_null=True)
    atSeconds = serializers.FloatField()
    done = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class ActionItemPageSchema(serializers.Serializer):
    items = ActionItemSchema(many=True)
    nextCursor = serializers.CharField(allow_null=True)


class AnalysisSchema(serializers.Serializer):
    callId = serializers.UUIDField()
    summary = serializers.CharField()
    actionItems = ActionItemSchema(many=True)
    keyTopics = serializers.ListField(child=serializers.CharField())
    talkTime = serializers.ListField(child=serializers.DictField(), help_text='[{"speakerId", "name", "share"}]')
    questions = serializers.ListField(child=serializers.DictField(), help_text='[{"speakerId", "speaker", "text"}]')
    speakers = SpeakerSchema(many=True)
    analyzer = serializers.ChoiceField(choices=["rules", "openai"])
