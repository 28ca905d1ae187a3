"""Webhook endpoints: validation (URL and SSRF policy, event names, secrets) and their lifecycle.

Create, update, enable/disable, delete and rotate the secret. Sending lives in
`webhooks.services.deliveries`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scaiwave.api.errors import ProblemError
from scaiwave.audit import deletion_record
from scaiwave.crypto import encrypt_secret
from scaiwave.models import Tenant
from webhooks.events import WILDCARD, unknown_event_types
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.signing import secret_generate, standard_secret_problem
from webhooks.ssrf import BlockedTarget, check_url_for_saving, normalized_url

_MAX_URL_LENGTH = 2000
_MIN_SECRET_LENGTH = 8
_MAX_SECRET_LENGTH = 200


# --- validation -------------------------------------------------------------------------------


def _validated_url(url: str) -> str:
    """The URL as it will be stored and sent (see webhooks.ssrf.normalized_url). Raises ProblemError 400."""
    url = url.strip()
    try:
        url = normalized_url(url) if url else url
        too_long = not url or len(url) > _MAX_URL_LENGTH
        if not too_long:
            check_url_for_saving(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    except BlockedTarget as exc:
        code = "invalid_webhook_url" if exc.reason in ("invalid_url", "scheme") else "webhook_url_blocked"
        raise ProblemError(400, code, exc.detail, errors={"url": [exc.detail]}, reason=exc.reason) from None
    if too_long:
        raise ProblemError(
            400,
            "invalid_webhook_url",
            "url must be an http(s) URL of at most 2000 characters.",
            errors={"url": ["Invalid URL."]},
        )
    return url


def _validated_events(events: list[str] | None) -> list[str]:
    if events is None:
        return [WILDCARD]
    if not events:
        raise ProblemError(
            400,
            "validation_failed",
            'events must name at least one event (or "*").',
            errors={"events": ["Empty list."]},
        )
    unknown = unknown_event_types(events)
    if unknown:
        raise ProblemError(
            400,
            "unknown_event_type",
            f"Unknown event name(s): {', '.join(unknown)}.",
            errors={"events": [f"Unknown event: {name}" for name in unknown]},
        )
    return list(dict.fromkeys(events))  # de-duplicated, order kept


def _validated_secret(secret: str | None, *, format: str) -> str:
    """A generated secret, or the client's: 8-200 characters without surrounding spaces, and for the
    standard format in the Standard Webhooks shape (whsec_<base64 of 16-64 bytes>) so that the
    standardwebhooks libraries verify with the very string the client chose. Raises ProblemError 400."""
    if secret is None:
        return secret_generate()
    problem = None
    if not (_MIN_SECRET_LENGTH <= len(secret) <= _MAX_SECRET_LENGTH) or secret != secret.strip():
        problem = f"secret must be {_MIN_SECRET_LENGTH} to {_MAX_SECRET_LENGTH} characters without surrounding spaces"
    elif format == WebhookEndpoint.Format.STANDARD:
        reason = standard_secret_problem(secret)
        if reason:
            problem = (
                f"A Standard Webhooks secret is whsec_ followed by the base64 of 16 to 64 random bytes; {reason}. "
                'Omit it to get one generated, or use "format": "rtcstack" for a plain shared secret.'
            )
    if problem:
        raise ProblemError(400, "invalid_secret", problem, errors={"secret": [problem]})
    return secret


def _validated_format(format: str | None) -> str:
    if format is None:
        return WebhookEndpoint.Format.STANDARD
    if format not in WebhookEndpoint.Format.values:
        raise ProblemError(
            400,
            "validation_failed",
            'format must be "standard" or "rtcstack".',
            errors={"format": ["Unknown format."]},
        )
    return format


def webhook_validate(*, url: str, events: list[str] | None) -> tuple[str, list[str]]:
    """The cleaned url and event filter, as create/update would store them (for forms such as the admin's).

    Raises ProblemError 400 like webhook_create.
    """
    return _validated_url(url), _validated_events(events)


# --- endpoints ----------------------------------------------------------------------------------


def webhook_create(
    *,
    tenant: Tenant,
    url: str,
    events: list[str] | None = None,
    secret: str | None = None,
    format: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint. Returns it with the plaintext secret (shown to the caller once).

    Raises ProblemError 400 (invalid_webhook_url, webhook_url_blocked, unknown_event_type, invalid_secret,
    validation_failed for an unknown format).
    """
    format = _validated_format(format)
    plaintext = _validated_secret(secret, format=format)
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant,
        format=format,
        url=_validated_url(url),
        events=_validated_events(events),
        secret_encrypted=encrypt_secret(plaintext),
    )
    return endpoint, plaintext


@transaction.atomic
def webhook_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    format: str | None = None,
) -> WebhookEndpoint:
    """Change url, events, format and/or enabled. Re-enabling clears the disabled notice and the failure streak.

    Raises ProblemError 400 as webhook_create; `invalid_secret` when switching to the standard format with
    a secret that is not a Standard Webhooks one (rotate it first)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if format is not None:
        locked.format = _validated_format(format)
        if locked.format == WebhookEndpoint.Format.STANDARD and standard_secret_problem(locked.secret):
            raise ProblemError(
                400,
                "invalid_secret",
                "The webhook's secret is not a Standard Webhooks secret: rotate it (or omit the new one to get "
                "one generated) before switching to the standard format.",
                errors={"format": ["The secret does not fit this format."]},
            )
    if url is not None:
        locked.url = _validated_url(url)
    if events is not None:
        locked.events = _validated_events(events)
    if enabled is True and not locked.enabled:
        _mark_enabled(locked)
    elif enabled is False and locked.enabled:
        _mark_disabled(locked, reason="disabled by the API")
    locked.save()
    return locked


def _mark_enabled(endpoint: WebhookEndpoint) -> None:
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    endpoint.retry_at = None


def _mark_disabled(endpoint: WebhookEndpoint, *, reason: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = timezone.now()


@transaction.atomic
def webhook_set_enabled(*, endpoint: WebhookEndpoint, enabled: bool, reason: str = "disabled by an operator") -> None:
    """Enable or disable an endpoint (the admin's actions)."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if enabled and not locked.enabled:
        _mark_enabled(locked)
    elif not enabled and locked.enabled:
        _mark_disabled(locked, reason=reason)
    locked.save()


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint, actor: str) -> None:
    """Delete an endpoint and its delivery log. Queued tasks for it find nothing and stop.

    The row lock makes a concurrent test send (which locks the endpoint to add its delivery) either finish
    first, its delivery deleted here, or find the endpoint gone; without it the test's delivery could land
    between the collector's read and the commit and fail the deferred foreign key (a 500)."""
    locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    if locked is None:
        return
    Delivery.objects.filter(endpoint_id=locked.pk).delete()
    deletion_record(tenant=locked.tenant, type="webhook_deleted", object_id=str(locked.pk), actor=actor, url=locked.url)
    locked.delete()


@transaction.atomic
def webhook_rotate_secret(*, endpoint: WebhookEndpoint, secret: str | None = None) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the old one keeps signing for WEBHOOK_SECRET_GRACE_SECONDS.

    Takes the endpoint's row lock so two rotations in a row keep the right "previous" secret.
    """
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    plaintext = _validated_secret(secret, format=locked.format)
    locked.previous_secret_encrypted = locked.secret_encrypted
    locked.previous_secret_expires_at = timezone.now() + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)
    locked.secret_encrypted = encrypt_secret(plaintext)
    locked.save(
        update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted", "updated_at"]
    )
    return locked, plaintext
