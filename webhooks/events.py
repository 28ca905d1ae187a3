"""The event names an outbound webhook may subscribe to: one list, imported by whoever needs it.

Document 001's names come first (`*` means every event), then what ScaiWave adds: recording
outcomes, a post-call transcription that failed, uploaded-call analysis (done or failed), the calls surface's
`swp.call.*` events, and the endpoint's own `webhook.disabled` notice.
"""

from __future__ import annotations

WILDCARD = "*"

DOCUMENT_EVENT_TYPES: tuple[str, ...] = (
    "room_created",
    "room_closed",
    "participant_joined",
    "participant_left",
    "track_published",
    "recording_started",
    "recording_stopped",
    "ingress_started",
    "ingress_stopped",
    "transcription_completed",
)

SCAIWAVE_EVENT_TYPES: tuple[str, ...] = (
    "recording_failed",
    "recording_ready",
    "transcription_failed",
    "analysis_completed",
    "analysis_failed",
    "swp.call.invite",
    "swp.call.ringing_cancelled",
    "swp.call.participant_joined",
    "swp.call.participant_left",
    "swp.call.ended",
    "swp.call.missed",
    "swp.call.recording_started",
    "swp.call.recording_stopped",
    "webhook.disabled",
)

# Every name a webhook filter accepts, in the order the API documents them.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (*DOCUMENT_EVENT_TYPES, *SCAIWAVE_EVENT_TYPES, WILDCARD)

# The type of the synchronous ping sent by `POST /v1/webhooks/{id}/test` (never filtered).
TEST_EVENT_TYPE = "webhook.test"
WEBHOOK_DISABLED = "webhook.disabled"


_DELIVERABLE = frozenset(WEBHOOK_EVENT_TYPES) - {WILDCARD}


def filter_matches(filters: list[str], event_type: str) -> bool:
    """True if an endpoint subscribed to `filters` wants events of `event_type`.

    Only the listed types go to webhooks: `*` means every one of them, not every outbox event
    (WebSocket-only frames such as `transcription.segment` are never delivered as webhooks).
    """
    if event_type not in _DELIVERABLE:
        return False
    return WILDCARD in filters or event_type in filters


def unknown_event_types(names: list[str]) -> list[str]:
    allowed = set(WEBHOOK_EVENT_TYPES)
    return [name for name in names if name not in allowed]
