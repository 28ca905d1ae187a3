from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from scaiwave.api.auth import Principal


def principal_of(request: Request) -> Principal:
    principal = request.user
    assert isinstance(principal, Principal), "view reached without an authenticated principal"
    return principal


class IsTenantPrincipal(BasePermission):
    """Any authenticated caller: a tenant server or a tenant user."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Principal)


class IsTenantServer(BasePermission):
    """Server-to-server only (`X-API-Key`)."""

    message = "This endpoint needs the tenant's X-API-Key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Principal) and request.user.is_server


class IsTenantUser(BasePermission):
    """A user bearer token only."""

    message = "This endpoint needs a user bearer token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, Principal) and not request.user.is_server
