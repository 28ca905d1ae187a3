"""Test personas shared by every app's tests: a tenant with its server key and users.

creds = make_tenant("acme")
creds.server()                 # APIClient sending X-API-Key
creds.user("alice")            # APIClient sending a bearer JWT for user "alice"
creds.user_token("alice", ttl=60, name="Alice")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from rest_framework.test import APIClient

from scaiwave.models import Event, Tenant, TenantUser
from scaiwave.services import tenant_create


@dataclass
class TenantCreds:
    tenant: Tenant
    api_secret: str

    @property
    def api_key_id(self) -> str:
        return self.tenant.api_key_id

    def user_token(self, sub: str, *, ttl: int = 3600, name: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.tenant.api_key_id, "sub": sub, "iat": now, "exp": now + ttl}
        if name:
            payload["name"] = name
        payload.update(claims)
        return jwt.encode(payload, self.api_secret, algorithm="HS256")

    def server(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=self.api_secret)
        return client

    def user(self, sub: str, *, name: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.user_token(sub, name=name)}")
        return client

    def user_row(self, sub: str, name: str = "") -> TenantUser:
        user, _ = TenantUser.objects.get_or_create(tenant=self.tenant, external_id=sub, defaults={"display_name": name})
        return user


def make_tenant(name: str) -> TenantCreds:
    tenant, secret = tenant_create(name=name)
    return TenantCreds(tenant=tenant, api_secret=secret)


def audit_traced(caplog: Any, type_: str, actor: str) -> dict[str, Any]:
    """The one `type_` event a delete left, after checking that it and its `scaiwave.audit` log line name `actor`."""
    [event] = Event.objects.filter(type=type_)
    assert event.data["actor"] == actor
    assert any(
        r.name == "scaiwave.audit" and getattr(r, "event", None) == type_ and getattr(r, "actor", None) == actor
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    return dict(event.data)
