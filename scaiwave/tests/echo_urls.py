"""A test-only URLconf: the real routes plus probe views that exercise the API conventions."""

from __future__ import annotations

import threading
import time

from django.urls import include, path
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.errors import ProblemError
from scaiwave.api.idempotency import idempotent
from scaiwave.api.permissions import principal_of
from scaiwave.api.throttling import FixedWindowThrottle

executions: list[int] = []
_lock = threading.Lock()


class EchoInput(serializers.Serializer):
    n = serializers.IntegerField(min_value=0)
    slow = serializers.FloatField(required=False, default=0)


class EchoView(APIView):
    parser_classes = [JSONParser]

    @idempotent
    def post(self, request: Request) -> Response:
        data = EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["slow"]:
            time.sleep(data.validated_data["slow"])
        with _lock:
            executions.append(data.validated_data["n"])
            count = len(executions)
        principal = principal_of(request)
        who = "server" if principal.user is None else f"user:{principal.user.external_id}"
        return Response({"principal": who, "n": data.validated_data["n"], "execution": count}, status=201)


class ProblemView(APIView):
    def get(self, request: Request, status: int) -> Response:
        raise ProblemError(status, f"probe_{status}", f"probe {status}")


class TightThrottle(FixedWindowThrottle):
    scope = "probe"

    def __init__(self) -> None:
        self.limit, self.window = 2, 60
        self._wait = 0.0

    def key_for(self, request: Request) -> str:
        return principal_of(request).tenant.pk


class ThrottledView(APIView):
    throttle_classes = [TightThrottle]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("v1/_test/echo", EchoView.as_view()),
    path("v1/_test/problem/<int:status>", ProblemView.as_view()),
    path("v1/_test/throttled", ThrottledView.as_view()),
    path("", include("scaiwave.urls")),
]

handler404 = "scaiwave.api.errors.handler404"
handler500 = "scaiwave.api.errors.handler500"
