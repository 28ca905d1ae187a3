"""Idempotency-Key for POSTs that create something.

The key is stored per tenant, caller and endpoint for IDEMPOTENCY_TTL_SECONDS. Same key
and same body: the first response is replayed (with `Idempotent-Replayed: true`). Same
key, other body: 422 `idempotency_key_reused`. A duplicate arriving while the first is
still running: 409 `idempotency_in_progress` (the unique row is claimed before the
work starts, so two never both execute).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from scaiwave.api.auth import Principal
from scaiwave.api.errors import ProblemError
from scaiwave.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.path.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _claim(principal: Principal, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the in-progress row; return the existing row if the key is already taken."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)
    IdempotencyRecord.objects.filter(tenant=principal.tenant, scope=scope, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                tenant=principal.tenant, scope=scope, key=key, request_fingerprint=fingerprint
            )
        return None
    except IntegrityError:
        return IdempotencyRecord.objects.get(tenant=principal.tenant, scope=scope, key=key)


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    if record.state != IdempotencyRecord.State.COMPLETED:
        raise ProblemError(
            409, "idempotency_in_progress", "A request with this Idempotency-Key is still being processed."
        )
    response = Response(status=record.response_status)
    response.content = bytes(record.response_body or b"")
    response["Content-Type"] = record.response_content_type or "application/json"
    response["Idempotent-Replayed"] = "true"
    # Already rendered: mark it so DRF does not render it again.
    response._is_rendered = True  # type: ignore[attr-defined]
    return response


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a DRF view method (post/create/action) to honour Idempotency-Key."""

    @functools.wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.META.get(HEADER)
        principal = request.user
        if not key or not isinstance(principal, Principal):
            return view_method(self, request, *args, **kwargs)
        if len(key) > 255:
            raise ProblemError(400, "validation_failed", "Idempotency-Key is longer than 255 characters.")
        body = request.body if hasattr(request, "body") else b""
        fingerprint = _fingerprint(request, body)
        scope = f"{principal.scope_key}:{request.path}"
        existing = _claim(principal, scope, key, fingerprint)
        if existing is not None:
            return _replay(existing, fingerprint)
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception:
            # A failed attempt does not burn the key: the client may retry it.
            IdempotencyRecord.objects.filter(tenant=principal.tenant, scope=scope, key=key).delete()
            raise
        if response.status_code >= 500:
            IdempotencyRecord.objects.filter(tenant=principal.tenant, scope=scope, key=key).delete()
            return response
        response = self.finalize_response(request, response, *args, **kwargs)
        response.render()
        IdempotencyRecord.objects.filter(tenant=principal.tenant, scope=scope, key=key).update(
            state=IdempotencyRecord.State.COMPLETED,
            response_status=response.status_code,
            response_body=response.content,
            response_content_type=response.get("Content-Type", "application/json"),
        )
        return response

    return wrapper
