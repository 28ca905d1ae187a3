"""Tenant lifecycle: create, rotate the API secret."""

from __future__ import annotations

import secrets
import string

from django.db import IntegrityError, transaction
from django.utils import timezone

from scaiwave.api.auth import clear_tenant_cache
from scaiwave.crypto import encrypt_secret, secret_digest
from scaiwave.models import Tenant

_KEY_ALPHABET = string.ascii_uppercase + string.digits


def _new_api_key_id() -> str:
    return "AK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(14))


def _new_api_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def tenant_create(*, name: str, api_secret: str | None = None) -> tuple[Tenant, str]:
    """Create a tenant; returns it with its plaintext API secret (shown once to the caller).

    The first tenant's rooms keep their own names in LiveKit (`livekit_room_prefix` empty); a tenant that
    shares the LiveKit project with it gets `<id>--`. A unique constraint admits one unprefixed tenant, so
    of two created at once the second takes the prefix.
    """
    secret = api_secret or _new_api_secret()
    fields = {
        "name": name,
        "api_key_id": _new_api_key_id(),
        "api_secret_digest": secret_digest(secret),
        "api_secret_encrypted": encrypt_secret(secret),
    }
    if not Tenant.objects.filter(livekit_room_prefix="").exists():
        try:
            with transaction.atomic():
                return Tenant.objects.create(**fields, livekit_room_prefix=""), secret
        except IntegrityError:
            if Tenant.objects.filter(name=name).exists():
                raise
    tenant = Tenant(**fields)
    tenant.livekit_room_prefix = f"{tenant.pk}--"
    tenant.save(force_insert=True)
    return tenant, secret


@transaction.atomic
def tenant_rotate_secret(*, tenant: Tenant) -> str:
    """Replace the tenant's API secret. The old one stops working at once in this process and within the tenant
    cache's TTL (5 s, scaiwave.api.auth) in the others (X-API-Key and user tokens)."""
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    secret = _new_api_secret()
    locked.api_secret_digest = secret_digest(secret)
    locked.api_secret_encrypted = encrypt_secret(secret)
    locked.secret_rotated_at = timezone.now()
    locked.save(update_fields=["api_secret_digest", "api_secret_encrypted", "secret_rotated_at"])
    transaction.on_commit(clear_tenant_cache)
    tenant.refresh_from_db()
    return secret
