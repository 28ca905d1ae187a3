"""`/app/`: the calls app's page and its small server side (sign-in and rooms for the demo).

Everything else the page does goes through the public API with the user's token, as any client would.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scaiwave.api.errors import ProblemError
from scaiwave.api.permissions import IsTenantUser, principal_of
from webapp import selectors, services

LIVEKIT_CLIENT_VERSION = "2.23.0"  # webapp/static/webapp/vendor/livekit-client/README.md


@require_GET
def app_page(request: HttpRequest) -> HttpResponse:
    """The single page; it signs in and then talks to the API with a user token."""
    config = {
        "mode": settings.SCAIWAVE_MODE,
        "demo": services.demo_available(),
        "livekitClientVersion": LIVEKIT_CLIENT_VERSION,
    }
    response = render(request, "app/index.html", {"config": config, "livekit_client_version": LIVEKIT_CLIENT_VERSION})
    # Calls need the microphone and camera of this page only.
    response["Permissions-Policy"] = "camera=(self), microphone=(self), display-capture=()"
    response["Referrer-Policy"] = "no-referrer"  # the token may sit in the URL fragment
    return response


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        errors = {field: [str(e) for e in messages] for field, messages in serializer.errors.items()}
        first = next(iter(errors.values()))[0]
        raise ProblemError(400, "validation_failed", first, errors=errors)
    return dict(serializer.validated_data)


class SignInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True)


class RoomCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(
        r"^[^/\x00-\x1f\x7f]{1,200}$",
        error_messages={"invalid": "A room name has 1 to 200 characters and no '/'."},
    )
    people = serializers.ListField(child=serializers.CharField(max_length=200), max_length=50, required=False)


class MemberAddSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


@extend_schema(exclude=True)  # the app's own endpoints, not part of the public API
class SignInView(APIView):
    """POST /app/session {"name"}: a demo user token. Refused (403 `demo_disabled`) in production mode."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        data = _validated(SignInSerializer, request)
        session = services.demo_sign_in(name=data["name"])
        return Response(
            {
                "token": session.token,
                "user_id": session.user.external_id,
                "name": session.user.display_name,
                "expires_at": session.expires_at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


@extend_schema(exclude=True)
class MyRoomsView(APIView):
    """GET /app/api/rooms: the caller's rooms. POST: create one as the demo tenant's server (embedded only)."""

    permission_classes = [IsTenantUser]

    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        assert principal.user is not None  # IsTenantUser
        return Response({"data": selectors.rooms_for_user(user=principal.user), "demo": services.demo_available()})

    def post(self, request: Request) -> Response:
        data = _validated(RoomCreateSerializer, request)
        room = services.demo_room_create(
            principal=principal_of(request), name=data["name"], people=data.get("people") or []
        )
        return Response({"data": {"id": room.name}}, status=status.HTTP_201_CREATED)


@extend_schema(exclude=True)
class RoomMembersView(APIView):
    """POST /app/api/rooms/{room_id}/members {"name"}: add a person (embedded only, room admins)."""

    permission_classes = [IsTenantUser]

    def post(self, request: Request, room_id: str) -> Response:
        data = _validated(MemberAddSerializer, request)
        member = services.demo_member_add(principal=principal_of(request), room_name=room_id, name=data["name"])
        body = {"user_id": member.user.external_id, "name": member.user.display_name, "power_level": member.power_level}
        return Response({"data": body}, status=status.HTTP_201_CREATED)
