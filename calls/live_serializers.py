"""Request and response shapes of the live-calls surface (document 003, snake_case, no envelope on 201)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from calls.fields import Rfc3339DateTimeField, StrictCharField
from calls.live_selectors import live_call_recording_url
from calls.models import LiveCall


class LiveCallCreateSerializer(serializers.Serializer):
    """Document 003's request body."""

    host_user_id = StrictCharField(
        min_length=1, max_length=200, trim_whitespace=False, help_text="The host's user id (the caller's own `sub`)"
    )
    # Kept as sent: `minLength: 1` allows "   ", and trimming renamed "  padded  ".
    title = StrictCharField(min_length=1, max_length=500, trim_whitespace=False)
    scheduled_at = Rfc3339DateTimeField(
        required=False, allow_null=True, help_text="When the stream should start; null: when the host starts it"
    )
    metadata = serializers.DictField(required=False, help_text="Any JSON object, returned as given")


class LiveCallSerializer(serializers.Serializer):
    """Document 003's 201 body (every required member), plus our `error_reason`, `metadata` and `stream_call_cid`."""

    id = serializers.UUIDField()
    host_user_id = serializers.CharField()
    title = serializers.CharField()
    scheduled_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    stream_call_id = serializers.CharField(allow_null=True, help_text="The LiveKit room name")
    stream_call_type = serializers.CharField(help_text="Always `livestream`")
    recording_url = serializers.CharField(
        allow_null=True, help_text="A time-limited download URL of the recording, once it is ready"
    )
    recording_ready_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=LiveCall.Status.choices)
    error_reason = serializers.CharField(allow_null=True, help_text="Why an `errored` call failed")
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        live: LiveCall = instance
        stamp = serializers.DateTimeField().to_representation

        def optional(value: Any) -> str | None:
            return stamp(value) if value is not None else None

        return {
            "id": str(live.pk),
            "host_user_id": live.host.external_id,
            "title": live.title,
            "scheduled_at": optional(live.scheduled_at),
            "started_at": optional(live.started_at),
            "ended_at": optional(live.ended_at),
            "stream_call_id": live.stream_call_id,
            "stream_call_type": LiveCall.STREAM_CALL_TYPE,
            "recording_url": live_call_recording_url(live),
            "recording_ready_at": optional(live.recording_ready_at),
            "status": live.status,
            "error_reason": live.error_reason or None,
            "metadata": live.metadata,
            "created_at": stamp(live.created_at),
            "updated_at": stamp(live.updated_at),
        }


class LiveCallListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=LiveCall.Status.choices, required=False)
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=50)


class LiveCallTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="LiveKit access token (JWT)")
    url = serializers.CharField(help_text="LiveKit URL to connect to (ws/wss)")
    expiresAt = serializers.DateTimeField(source="expires_at")
    role = serializers.ChoiceField(choices=["host", "viewer"], help_text="host publishes; viewer only subscribes")
    identity = serializers.CharField(help_text="The LiveKit participant identity (the user id)")
