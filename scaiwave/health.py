"""`GET /v1/health` (document 001) and the load balancers' `/healthz` and `/readyz`."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.errors import problem_json_response
from scaiwave.api.permissions import IsTenantServer
from scaiwave.api.schema import PROBLEM_RESPONSES
from transcription.capabilities import transcription_capabilities


class HealthView(APIView):
    permission_classes = [IsTenantServer]

    @extend_schema(
        operation_id="health",
        summary="Server status and enabled capabilities",
        tags=["health"],
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.CharField(),
                    "version": serializers.CharField(),
                    "capabilities": inline_serializer(
                        "Capabilities",
                        {
                            "transcriptionLive": serializers.BooleanField(),
                            "transcriptionPost": serializers.BooleanField(),
                        },
                    ),
                },
            ),
            **PROBLEM_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"status": "ok", "version": settings.SCAIWAVE_VERSION, "capabilities": transcription_capabilities()}
        )


def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _broker_reachable() -> tuple[bool, str]:
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
            return True, "redis"
        except redis.RedisError as exc:
            return False, f"redis: {exc}"
    folder = settings.BROKER_DIR / "in"
    return folder.is_dir(), "filesystem"


def readiness(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database_ok, database_note = True, connection.vendor
    except Exception as exc:
        database_ok, database_note = False, str(exc)[:200]
    broker_ok, broker_note = _broker_reachable()
    if database_ok and broker_ok:
        return JsonResponse({"status": "ready", "database": database_note, "broker": broker_note})
    return problem_json_response(
        503,
        "not_ready",
        "A dependency is unreachable.",
        checks={
            "database": database_ok,
            "broker": broker_ok,
            "database_note": database_note,
            "broker_note": broker_note,
        },
    )
