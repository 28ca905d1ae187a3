"""`/v1/webhooks` (document 001) and ours: delivery log, retry, secret rotation. Server auth only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http_status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.idempotency import idempotent
from scaiwave.api.pagination import paginate, parse_limit
from scaiwave.api.permissions import IsTenantServer, principal_of
from scaiwave.api.schema import PROBLEM_RESPONSES, problem
from scaiwave.audit import actor_of
from webhooks import selectors, services
from webhooks.models import WebhookEndpoint
from webhooks.serializers import (
    DeliveryListOutput,
    DeliveryOutput,
    RotateSecretInput,
    TestDeliveryOutput,
    WebhookCreateInput,
    WebhookListOutput,
    WebhookOutput,
    WebhookUpdateInput,
)

_WEBHOOK_EXAMPLE = {
    "id": "wh_3k2j4h5g6f7d8s9a0q1w",
    "url": "https://example.com/hooks/scaiwave",
    "events": ["room_created", "recording_ready"],
    "format": "standard",
    "secret": "***",
    "enabled": True,
    "disabledReason": None,
    "disabledAt": None,
    "consecutiveFailures": 0,
    "previousSecretExpiresAt": None,
    "createdAt": "2025-01-01T12:00:00Z",
    "updatedAt": "2025-01-01T12:00:00Z",
}
_CREATED_EXAMPLE = {**_WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
_DELIVERY_EXAMPLE = {
    "id": "dlv_0a1b2c3d4e5f6g7h8i9j",
    "webhookId": "wh_3k2j4h5g6f7d8s9a0q1w",
    "eventId": "evt_9z8y7x6w5v4u3t2s1r0q",
    "eventType": "room_created",
    "status": "pending",
    "attempts": 2,
    "lastStatusCode": 503,
    "lastError": "http_status: 503",
    "lastResponseBody": "upstream unavailable",
    "durationMs": 41,
    "nextAttemptAt": "2025-01-01T12:02:30Z",
    "lastAttemptAt": "2025-01-01T12:00:30Z",
    "deliveredAt": None,
    "createdAt": "2025-01-01T12:00:00Z",
}

_NOT_FOUND = {404: problem("Webhook not found", "webhook_not_found")}
_BAD_WEBHOOK = problem("Invalid URL, blocked address, unknown event name or bad secret", "unknown_event_type")
_WEBHOOK_ID = OpenApiParameter("webhookId", str, OpenApiParameter.PATH, description="The webhook's id (wh_...)")


def _webhook_body(endpoint: WebhookEndpoint, *, plaintext_secret: str | None = None) -> dict[str, Any]:
    return WebhookOutput(endpoint, context={"plaintext_secret": plaintext_secret}).data


class WebhookBaseView(APIView):
    permission_classes = [IsTenantServer]
    problem_codes = {"404": "webhook_not_found"}

    def get_endpoint(self, request: Request, webhook_id: str) -> WebhookEndpoint:
        return selectors.webhook_get(tenant=principal_of(request).tenant, webhook_id=webhook_id)


class WebhookListView(WebhookBaseView):
    problem_codes: dict[str, str] = {}

    @extend_schema(
        operation_id="webhooks_list",
        summary="List webhooks (secrets masked as ***)",
        tags=["webhooks"],
        parameters=[
            OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
            OpenApiParameter("limit", int, description="1..100, default 50"),
        ],
        responses={
            200: OpenApiResponse(
                WebhookListOutput,
                examples=[OpenApiExample("webhooks", value={"webhooks": [_WEBHOOK_EXAMPLE], "nextCursor": None})],
            ),
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        page = paginate(
            selectors.webhooks_for_tenant(tenant=principal_of(request).tenant),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return Response({"webhooks": [_webhook_body(e) for e in page.items], "nextCursor": page.next_cursor})

    @extend_schema(
        operation_id="webhooks_create",
        summary="Register a webhook (the plaintext secret is returned only here)",
        tags=["webhooks"],
        request=WebhookCreateInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        examples=[
            OpenApiExample(
                "register",
                value={"url": "https://example.com/hooks/scaiwave", "events": ["room_created", "recording_ready"]},
                request_only=True,
            ),
            OpenApiExample(
                "register an rtcstack-format receiver with its own secret",
                value={
                    "url": "https://example.com/hooks/rtcstack",
                    "events": ["*"],
                    "format": "rtcstack",
                    "secret": "my-shared-secret-123",
                },
                request_only=True,
            ),
        ],
        responses={
            201: OpenApiResponse(WebhookOutput, examples=[OpenApiExample("created", value=_CREATED_EXAMPLE)]),
            400: _BAD_WEBHOOK,
            409: problem("Same Idempotency-Key still in progress", "idempotency_in_progress"),
            422: problem("Idempotency-Key reused with another body", "idempotency_key_reused"),
            **PROBLEM_RESPONSES,
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        body = WebhookCreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_create(tenant=principal_of(request).tenant, **body.validated_data)
        return Response(_webhook_body(endpoint, plaintext_secret=secret), status=http_status.HTTP_201_CREATED)


class WebhookDetailView(WebhookBaseView):
    @extend_schema(
        operation_id="webhooks_get",
        summary="Get a webhook (secret masked)",
        tags=["webhooks"],
        parameters=[_WEBHOOK_ID],
        responses={
            200: OpenApiResponse(WebhookOutput, examples=[OpenApiExample("webhook", value=_WEBHOOK_EXAMPLE)]),
            **_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, webhookId: str) -> Response:
        return Response(_webhook_body(self.get_endpoint(request, webhookId)))

    @extend_schema(
        operation_id="webhooks_update",
        summary="Update url, events, format and/or enabled",
        description="Enabling a webhook that was disabled after repeated failures clears the notice.",
        tags=["webhooks"],
        parameters=[_WEBHOOK_ID],
        request=WebhookUpdateInput,
        examples=[OpenApiExample("re-enable", value={"enabled": True}, request_only=True)],
        responses={
            200: OpenApiResponse(WebhookOutput, examples=[OpenApiExample("webhook", value=_WEBHOOK_EXAMPLE)]),
            400: _BAD_WEBHOOK,
            **_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def patch(self, request: Request, webhookId: str) -> Response:
        endpoint = self.get_endpoint(request, webhookId)
        body = WebhookUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = services.webhook_update(endpoint=endpoint, **body.validated_data)
        return Response(_webhook_body(endpoint))

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Delete a webhook and its delivery log",
        tags=["webhooks"],
        parameters=[_WEBHOOK_ID],
        responses={204: None, **_NOT_FOUND, **PROBLEM_RESPONSES},
    )
    def delete(self, request: Request, webhookId: str) -> Response:
        services.webhook_delete(endpoint=self.get_endpoint(request, webhookId), actor=actor_of(principal_of(request)))
        return Response(status=http_status.HTTP_204_NO_CONTENT)


class WebhookTestView(WebhookBaseView):
    @extend_schema(
        operation_id="webhooks_test",
        summary="Send a signed test delivery now and report the answer",
        description="Synchronous and bounded by WEBHOOK_TIMEOUT (15 s); not retried. The attempt is in the log.",
        tags=["webhooks"],
        parameters=[_WEBHOOK_ID],
        request=None,
        responses={
            200: OpenApiResponse(
                TestDeliveryOutput,
                examples=[
                    OpenApiExample(
                        "delivered",
                        value={
                            "delivered": True,
                            "statusCode": 200,
                            "deliveryId": "dlv_0a1b2c3d4e5f6g7h8i9j",
                            "error": None,
                            "durationMs": 35,
                        },
                    )
                ],
            ),
            **_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def post(self, request: Request, webhookId: str) -> Response:
        delivery = services.webhook_send_test(endpoint=self.get_endpoint(request, webhookId))
        return Response(
            {
                "delivered": delivery.status == delivery.Status.DELIVERED,
                "statusCode": delivery.last_status_code,
                "deliveryId": delivery.pk,
                "error": delivery.last_error or None,
                "durationMs": delivery.duration_ms,
            }
        )


class WebhookRotateSecretView(WebhookBaseView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        summary="Rotate the signing secret (the new one is returned once)",
        description=(
            "Until previousSecretExpiresAt (WEBHOOK_SECRET_GRACE_SECONDS, default a day) every delivery carries "
            "two signatures, one per secret, so receivers can switch without losing a delivery."
        ),
        tags=["webhooks"],
        parameters=[_WEBHOOK_ID],
        request=RotateSecretInput,
        responses={
            200: OpenApiResponse(
                WebhookOutput,
                examples=[
                    OpenApiExample(
                        "rotated", value={**_CREATED_EXAMPLE, "previousSecretExpiresAt": "2025-01-02T12:00:00Z"}
                    )
                ],
            ),
            400: problem("Bad secret", "invalid_secret"),
            **_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def post(self, request: Request, webhookId: str) -> Response:
        endpoint = self.get_endpoint(request, webhookId)
        body = RotateSecretInput(data=request.data or {})
        body.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_rotate_secret(endpoint=endpoint, **body.validated_data)
        return Response(_webhook_body(endpoint, plaintext_secret=secret))


class DeliveryListView(WebhookBaseView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        summary="The webhook's delivery log, newest first",
        tags=["webhooks"],
        parameters=[
            _WEBHOOK_ID,
            OpenApiParameter("status", str, enum=["pending", "delivered", "failed", "dead"]),
            OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
            OpenApiParameter("limit", int, description="1..100, default 50"),
        ],
        responses={
            200: OpenApiResponse(
                DeliveryListOutput,
                examples=[OpenApiExample("log", value={"deliveries": [_DELIVERY_EXAMPLE], "nextCursor": None})],
            ),
            400: problem("Bad status, limit or cursor", "invalid_cursor"),
            **_NOT_FOUND,
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request, webhookId: str) -> Response:
        endpoint = self.get_endpoint(request, webhookId)
        page = paginate(
            selectors.deliveries_for_webhook(endpoint=endpoint, status=request.query_params.get("status")),
            cursor=request.query_params.get("cursor"),
            limit=parse_limit(request.query_params.get("limit")),
        )
        return Response({"deliveries": DeliveryOutput(page.items, many=True).data, "nextCursor": page.next_cursor})


class DeliveryRetryView(WebhookBaseView):
    problem_codes = {"404": "delivery_not_found"}

    @extend_schema(
        operation_id="webhooks_deliveries_retry",
        summary="Send a delivery again now",
        description="Any status may be retried; the same payload and webhook-id are sent, freshly signed.",
        tags=["webhooks"],
        parameters=[
            _WEBHOOK_ID,
            OpenApiParameter("deliveryId", str, OpenApiParameter.PATH, description="The delivery's id (dlv_...)"),
        ],
        request=None,
        responses={
            202: OpenApiResponse(
                DeliveryOutput,
                examples=[
                    OpenApiExample("queued", value={**_DELIVERY_EXAMPLE, "nextAttemptAt": "2025-01-01T12:00:40Z"})
                ],
            ),
            404: problem("Webhook or delivery not found", "delivery_not_found"),
            409: problem("An attempt is in flight, or the webhook is disabled", "delivery_in_flight"),
            **PROBLEM_RESPONSES,
        },
    )
    def post(self, request: Request, webhookId: str, deliveryId: str) -> Response:
        endpoint = self.get_endpoint(request, webhookId)
        delivery = selectors.delivery_get(endpoint=endpoint, delivery_id=deliveryId)
        delivery = services.delivery_retry(delivery=delivery)
        return Response(DeliveryOutput(delivery).data, status=http_status.HTTP_202_ACCEPTED)
