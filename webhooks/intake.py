"""The LiveKit webhook intake: `POST /v1/calls/webhook` (document 000's path).

LiveKit signs each delivery (a bare JWT in Authorization carrying the SHA-256 of the exact body),
so there is no ScaiWave credential: the signature is checked by the gateway on the raw bytes.
Every verified event is stored first (LiveKit's `id` is unique), then the LIVEKIT_EVENT_HANDLERS
are applied synchronously, each in its own savepoint, and the outcome is recorded:

- `applied`: every handler ran; `stale`: a handler found the event older than what it knows;
  `failed`: a handler raised (the error is stored; a redelivery of a failed event is applied again).
- A duplicate delivery of an event that did not fail only increments `duplicates`.

Why synchronously: the handlers are short database writes under one room's row lock (a few ms),
LiveKit waits for our answer per room queue anyway, and it keeps the order LiveKit delivers in.
Dropped or failed events are repaired by the reconciliation beat task (rooms.tasks).
The answer is always 200 once the event is stored: LiveKit would only re-send the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from livekit.protocol import webhook as lk_webhook
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms import livekit_gateway as gateway
from scaiwave.api.errors import ProblemError
from scaiwave.api.schema import problem
from webhooks.models import LiveKitEvent

logger = logging.getLogger("scaiwave.webhooks.intake")

LiveKitHandler = Callable[[lk_webhook.WebhookEvent, LiveKitEvent], None]


def _handlers() -> tuple[tuple[str, LiveKitHandler], ...]:
    loaded = []
    for dotted in settings.LIVEKIT_EVENT_HANDLERS:
        module_name, _, attr = dotted.rpartition(".")
        loaded.append((dotted, getattr(import_module(module_name), attr)))
    return tuple(loaded)


# createdAt (Unix seconds) may run this far ahead of our clock; further is not a clock skew but a broken or
# forged sender, and a far-future time would make every later event look stale.
CREATED_AT_MAX_AHEAD = timedelta(days=1)


def livekit_event_check_time(event: lk_webhook.WebhookEvent) -> None:
    """Raises ProblemError 400 webhook_body_invalid when createdAt is negative or implausibly far ahead
    (99999999999999999 was a 500: beyond what datetime can hold). 0 (absent) means "now"."""
    latest = (timezone.now() + CREATED_AT_MAX_AHEAD).timestamp()
    if event.created_at < 0 or event.created_at > latest:
        raise ProblemError(
            400,
            "webhook_body_invalid",
            f"createdAt {event.created_at} is not a plausible time.",
            errors={"createdAt": ["Not a plausible time."]},
        )


def livekit_event_store(*, body: bytes, event: lk_webhook.WebhookEvent) -> tuple[LiveKitEvent, bool]:
    """Store a verified event. Returns (record, needs_applying): False for a duplicate of an event
    that was applied (or is being applied) already; True for a new one or a redelivered failure."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = {}
    event_id = event.id or "body-" + hashlib.sha256(body).hexdigest()[:40]
    try:
        with transaction.atomic():
            record = LiveKitEvent.objects.create(
                event_id=event_id,
                event=event.event[:64],
                room_name=event.room.name or event.ingress_info.room_name or event.egress_info.room_name,
                participant_identity=event.participant.identity,
                egress_id=event.egress_info.egress_id,
                ingress_id=event.ingress_info.ingress_id,
                created_at=datetime.fromtimestamp(event.created_at, UTC) if event.created_at else timezone.now(),
                payload=payload,
            )
        return record, True
    except IntegrityError:
        LiveKitEvent.objects.filter(event_id=event_id).update(duplicates=F("duplicates") + 1)
        record = LiveKitEvent.objects.get(event_id=event_id)
        return record, record.outcome == LiveKitEvent.Outcome.FAILED


def livekit_event_apply(*, record: LiveKitEvent, event: lk_webhook.WebhookEvent) -> str:
    """Run every LIVEKIT_EVENT_HANDLERS entry on the event, each in its own transaction, and store the
    outcome (applied / stale / failed). Returns it."""
    record.outcome = LiveKitEvent.Outcome.PENDING
    errors = []
    for dotted, handler in _handlers():
        try:
            with transaction.atomic():
                handler(event, record)
        except Exception as exc:
            logger.exception("livekit event handler failed", extra={"handler": dotted, "event_id": record.event_id})
            errors.append(f"{dotted}: {exc!r}")
    if errors:
        record.outcome = LiveKitEvent.Outcome.FAILED
    elif record.outcome != LiveKitEvent.Outcome.STALE:
        record.outcome = LiveKitEvent.Outcome.APPLIED
    record.error = "\n".join(errors)[:4000]
    record.applied_at = timezone.now()
    LiveKitEvent.objects.filter(pk=record.pk).update(
        outcome=record.outcome, error=record.error, applied_at=record.applied_at
    )
    return str(record.outcome)


IntakeAnswer = inline_serializer(
    "LiveKitWebhookAccepted",
    {
        "received": serializers.BooleanField(),
        "eventId": serializers.CharField(),
        "duplicate": serializers.BooleanField(),
        "outcome": serializers.ChoiceField(choices=LiveKitEvent.Outcome.values),
    },
)


class LiveKitWebhookView(APIView):
    """LiveKit's webhooks. Authenticated by LiveKit's signature only, never by a ScaiWave key."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="livekit_webhook",
        summary="LiveKit webhook intake",
        description=(
            "Receives LiveKit's signed webhooks (`application/webhook+json`, the bare JWT in `Authorization` with "
            "the body's SHA-256). Each event is stored once by its `id`, then applied to rooms, participants, "
            "calls, recordings and ingress. Duplicates are counted and not applied again; events older than "
            "the known state are recorded as `stale`."
        ),
        tags=["livekit"],
        auth=[],
        request={"application/webhook+json": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "Authorization", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True, description="LiveKit JWT"
            )
        ],
        responses={
            200: IntakeAnswer,
            400: problem(
                "Signed, but not a LiveKit webhook event (or createdAt is impossible)", "webhook_body_invalid"
            ),
            401: problem("Missing or bad LiveKit signature", "webhook_signature_invalid"),
            503: problem("No LiveKit is configured", "livekit_not_configured"),
        },
        examples=[
            OpenApiExample(
                "participant_joined",
                value={
                    "event": "participant_joined",
                    "room": {"sid": "RM_abc", "name": "tn_x--standup"},
                    "participant": {"sid": "PA_abc", "identity": "alice", "state": "ACTIVE"},
                    "id": "EV_3bYk7xGqf2Zp",
                    "createdAt": "1767225600",
                },
                request_only=True,
            ),
            OpenApiExample(
                "accepted",
                value={"received": True, "eventId": "EV_3bYk7xGqf2Zp", "duplicate": False, "outcome": "applied"},
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        body = request.body
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            raise ProblemError(
                401, "webhook_signature_invalid", "The Authorization header with LiveKit's JWT is missing."
            )
        try:
            event = gateway.verify_webhook(body, authorization)
        except gateway.WebhookBodyInvalid as exc:
            raise ProblemError(400, "webhook_body_invalid", f"The body is not a LiveKit webhook event: {exc}") from None
        except ValueError as exc:
            raise ProblemError(401, "webhook_signature_invalid", f"The LiveKit signature is not valid: {exc}") from None
        livekit_event_check_time(event)
        record, needs_applying = livekit_event_store(body=body, event=event)
        outcome = livekit_event_apply(record=record, event=event) if needs_applying else str(record.outcome)
        return Response(
            {"received": True, "eventId": record.event_id, "duplicate": not needs_applying, "outcome": outcome}
        )
