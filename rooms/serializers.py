"""Input validation and output shapes of the rtcstack surface (document 001) and our member endpoints.

LiveKit objects (Room, ParticipantInfo, IngressInfo) are rendered by the gateway's `to_json`: LiveKit's own
protobuf JSON names (camelCase), int64 values as strings, every field present. The output serializers here
only describe them for the OpenAPI document.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from rest_framework import serializers

from rooms.livekit_gateway import INGRESS_TYPES, ROLES
from rooms.models import RoomMember

# A room name is used as a URL path segment and inside LiveKit's room name: no "/" and no control characters.
ROOM_NAME = re.compile(r"^[^/\x00-\x1f\x7f]{1,200}$")
IDENTITY = re.compile(r"^[^/\x00-\x1f\x7f]{1,255}$")


# Names are kept exactly as sent (`trim_whitespace=False`): a trimmed room name would be another room, and
# the client's next call under its own name a 404. Only names of nothing but spaces are refused.


def _not_only_spaces(value: str) -> None:
    if not value.strip():
        raise serializers.ValidationError("Must contain a character other than spaces.")


def _room_name(value: str) -> None:
    if not ROOM_NAME.match(value):
        raise serializers.ValidationError("Use 1 to 200 characters, without '/' or control characters.")
    _not_only_spaces(value)


def _identity(value: str) -> None:
    if not IDENTITY.match(value):
        raise serializers.ValidationError("Use 1 to 255 characters, without '/' or control characters.")
    _not_only_spaces(value)


def member_id_from_path(value: str) -> str:
    """A member id taken from the URL, held to what the same id must be in a body (`userId`): 1 to 255
    characters, no '/', control characters or lone surrogates. Raises ValidationError (400)."""
    field = serializers.CharField(max_length=255, validators=[_identity], trim_whitespace=False)
    try:
        return str(field.run_validation(value))
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"userId": exc.detail}) from None


# --- Tokens -------------------------------------------------------------------------------------


class TokenRequestSerializer(serializers.Serializer):
    roomId = serializers.CharField(
        max_length=200, trim_whitespace=False, validators=[_room_name], help_text="Target room name"
    )
    userId = serializers.CharField(
        max_length=255, trim_whitespace=False, validators=[_identity], help_text="Unique participant identity"
    )
    name = serializers.CharField(
        max_length=255, trim_whitespace=False, validators=[_not_only_spaces], help_text="Display name"
    )
    role = serializers.ChoiceField(choices=ROLES, help_text="Determines grants (see the role table)")
    metadata = serializers.JSONField(
        required=False, default=dict, help_text="Arbitrary JSON object attached to the participant"
    )

    def validate_metadata(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _kept_as_is(value: object) -> TypeGuard[str]:
    """A string DRF's CharField returns unchanged and accepts: not blank, no surrounding spaces (left to the
    serializer, which refuses names of only spaces), no NUL, no lone surrogate (both are refused by the
    validators every CharField carries)."""
    return (
        type(value) is str
        and value != ""
        and value == value.strip()
        and "\x00" not in value
        and (value.isascii() or _SURROGATE.search(value) is None)
    )


def token_request_fast(data: object) -> dict[str, Any] | None:
    """TokenRequestSerializer's validated data for a plainly well-formed body, or None to let the serializer
    decide (it also words the errors). Building and running the serializer costs about 140 µs here, as much
    as minting the token, so the hot path (rooms.token_asgi) asks this first. It accepts only bodies the
    serializer accepts and returns exactly what the serializer would (rooms/tests/test_token_fast_path.py
    holds the two side by side)."""
    if type(data) is not dict:
        return None
    room_id, user_id, name, role = data.get("roomId"), data.get("userId"), data.get("name"), data.get("role")
    metadata = data.get("metadata", {})
    if not (
        _kept_as_is(room_id)
        and ROOM_NAME.match(room_id)
        and _kept_as_is(user_id)
        and IDENTITY.match(user_id)
        and _kept_as_is(name)
        and len(name) <= 255
        and type(role) is str
        and role in ROLES
        and type(metadata) is dict
    ):
        return None
    return {"roomId": room_id, "userId": user_id, "name": name, "role": role, "metadata": metadata}


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="LiveKit access token (JWT)")
    url = serializers.CharField(help_text="The LiveKit URL clients connect to")
    expiresAt = serializers.CharField(help_text="ISO 8601 UTC expiry of the token")


# --- Rooms --------------------------------------------------------------------------------------


class RoomCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200, trim_whitespace=False, validators=[_room_name], help_text="Room name / ID (kept as sent)"
    )
    maxParticipants = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=100000, help_text="Hard cap on participants (0 = none)"
    )
    emptyTimeout = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=86400 * 7, help_text="Seconds before empty room is closed"
    )
    metadata = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=65536, help_text="Arbitrary string stored on the room"
    )


class LiveKitRoomSerializer(serializers.Serializer):
    """LiveKit's Room object; `name` is the roomId (ScaiWave keeps a tenant-prefixed name in LiveKit)."""

    sid = serializers.CharField()
    name = serializers.CharField()
    emptyTimeout = serializers.IntegerField()
    departureTimeout = serializers.IntegerField()
    maxParticipants = serializers.IntegerField()
    creationTime = serializers.CharField(help_text="unix seconds (int64 as a string)")
    creationTimeMs = serializers.CharField(help_text="unix milliseconds (int64 as a string)")
    turnPassword = serializers.CharField()
    enabledCodecs = serializers.ListField(child=serializers.DictField())
    metadata = serializers.CharField()
    numParticipants = serializers.IntegerField()
    numPublishers = serializers.IntegerField()
    activeRecording = serializers.BooleanField()


class RoomListSerializer(serializers.Serializer):
    rooms = LiveKitRoomSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page")


class TrackInfoSerializer(serializers.Serializer):
    sid = serializers.CharField()
    type = serializers.CharField(help_text="AUDIO | VIDEO | DATA")
    name = serializers.CharField()
    muted = serializers.BooleanField()
    source = serializers.CharField(help_text="CAMERA | MICROPHONE | SCREEN_SHARE | ...")  # type: ignore[assignment]
    mimeType = serializers.CharField()


class ParticipantInfoSerializer(serializers.Serializer):
    """LiveKit's ParticipantInfo (the fields listed here, plus every other ParticipantInfo field)."""

    sid = serializers.CharField()
    identity = serializers.CharField()
    state = serializers.CharField(help_text="JOINING | JOINED | ACTIVE | DISCONNECTED")
    tracks = TrackInfoSerializer(many=True)
    metadata = serializers.CharField()
    joinedAt = serializers.CharField(help_text="unix seconds")
    joinedAtMs = serializers.CharField(help_text="unix milliseconds")
    name = serializers.CharField()
    isPublisher = serializers.BooleanField()
    kind = serializers.CharField(help_text="STANDARD | INGRESS | EGRESS | SIP | AGENT")
    attributes = serializers.DictField(child=serializers.CharField())


class ParticipantListSerializer(serializers.Serializer):
    participants = ParticipantInfoSerializer(many=True)


class MuteSerializer(serializers.Serializer):
    trackSid = serializers.CharField(max_length=64, help_text="SID of the track to mute")


# --- Ingress ------------------------------------------------------------------------------------


class IngressCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=sorted(INGRESS_TYPES), default="rtmp", help_text="Ingress protocol")
    participantName = serializers.CharField(
        max_length=255,
        required=False,
        default="Ingress Stream",
        trim_whitespace=False,
        help_text="Display name in room",
    )
    participantIdentity = serializers.CharField(
        max_length=255,
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text="Unique identity (auto if empty)",
    )


class IngressInfoSerializer(serializers.Serializer):
    """LiveKit's IngressInfo; `roomName` is the roomId."""

    ingressId = serializers.CharField()
    name = serializers.CharField()
    streamKey = serializers.CharField()
    url = serializers.CharField()
    inputType = serializers.CharField(help_text="RTMP_INPUT | WHIP_INPUT")
    roomName = serializers.CharField()
    participantIdentity = serializers.CharField()
    participantName = serializers.CharField()
    reusable = serializers.BooleanField()
    state = serializers.DictField(required=False, help_text="status, error, startedAt, ... once LiveKit reports it")


class IngressListSerializer(serializers.Serializer):
    ingress = IngressInfoSerializer(many=True)


# --- Members ------------------------------------------------------------------------------------


class MemberSetSerializer(serializers.Serializer):
    powerLevel = serializers.IntegerField(min_value=0, max_value=100, help_text="0..100; 50+ may end calls and record")
    name = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)


class MemberSerializer(serializers.ModelSerializer):
    userId = serializers.CharField(source="user.external_id")
    name = serializers.CharField(source="user.display_name")
    powerLevel = serializers.IntegerField(source="power_level")
    joinedAt = serializers.DateTimeField(source="joined_at")

    class Meta:
        model = RoomMember
        fields = ["userId", "name", "powerLevel", "joinedAt"]


class MemberListSerializer(serializers.Serializer):
    members = MemberSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True)
