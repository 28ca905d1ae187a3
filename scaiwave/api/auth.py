"""Authentication: `X-API-Key` for servers, bearer JWTs for users.

The principal is put on `request.user`; `request.auth` is the same object.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeGuard

import jwt
from django.conf import settings
from django.utils import timezone
from rest_framework import authentication
from rest_framework.request import Request

from scaiwave.crypto import secret_digest
from scaiwave.models import Tenant, TenantUser

_USER_ALGORITHMS_EXTERNAL = ["RS256", "ES256"]
# A user JWT is a few hundred bytes; one of a megabyte is an attack on the parser, not a credential.
MAX_USER_TOKEN_CHARS = 8192
# Text that PostgreSQL cannot store (NUL, a lone surrogate) or that has no place in an id or a name.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def text_is_clean(value: object, *, max_length: int = 255) -> TypeGuard[str]:
    """A non-empty string of at most max_length characters without control or lone surrogate characters."""
    return isinstance(value, str) and 0 < len(value) <= max_length and _UNSAFE_TEXT.search(value) is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's server (`user` is None) or one of its users."""

    tenant: Tenant
    user: TenantUser | None = None

    is_authenticated = True
    is_active = True

    @property
    def is_server(self) -> bool:
        return self.user is None

    @property
    def scope_key(self) -> str:
        return "server" if self.user is None else f"user:{self.user.pk}"

    def __str__(self) -> str:
        return f"{self.tenant.name}:{self.scope_key}"


class AuthError(Exception):
    pass


# Tenants change rarely and are read on every request: a short per-process cache saves a query
# and a decryption per call. Rotation shows up within the TTL.
_TENANT_CACHE_TTL = 5.0
_cache_lock = threading.Lock()
_tenant_by_digest: dict[str, tuple[float, Tenant]] = {}
_tenant_by_key_id: dict[str, tuple[float, Tenant, str]] = {}


def clear_tenant_cache() -> None:
    with _cache_lock:
        _tenant_by_digest.clear()
        _tenant_by_key_id.clear()


def tenant_for_api_secret_cached(api_secret: str) -> Tenant | None:
    """The tenant of an API secret if this process looked it up less than _TENANT_CACHE_TTL ago, else None.
    Never touches the database, so async code can call it on the event loop before falling back to
    tenant_for_api_secret in a thread."""
    hit = _tenant_by_digest.get(secret_digest(api_secret))
    if hit and time.monotonic() - hit[0] < _TENANT_CACHE_TTL:
        return hit[1]
    return None


def tenant_for_api_secret(api_secret: str) -> Tenant | None:
    """The tenant whose API secret this is, or None. A rotated or deleted secret stops working in every
    process within _TENANT_CACHE_TTL seconds (only found tenants are cached, never misses)."""
    digest = secret_digest(api_secret)
    now = time.monotonic()
    hit = _tenant_by_digest.get(digest)
    if hit and now - hit[0] < _TENANT_CACHE_TTL:
        return hit[1]
    # The lookup is by the digest's unique index, so timing does not reveal a secret's prefix.
    tenant = Tenant.objects.filter(api_secret_digest=digest).first()
    if tenant is not None:
        with _cache_lock:
            _tenant_by_digest[digest] = (now, tenant)
    return tenant


def tenant_and_secret_for_key_id(api_key_id: str) -> tuple[Tenant, str] | None:
    now = time.monotonic()
    hit = _tenant_by_key_id.get(api_key_id)
    if hit and now - hit[0] < _TENANT_CACHE_TTL:
        return hit[1], hit[2]
    tenant = Tenant.objects.filter(api_key_id=api_key_id).first()
    if tenant is None:
        return None
    secret = tenant.api_secret
    with _cache_lock:
        _tenant_by_key_id[api_key_id] = (now, tenant, secret)
    return tenant, secret


def user_get_or_create(*, tenant: Tenant, external_id: str, display_name: str = "") -> TenantUser:
    """Users are created on first use; a name in a newer token updates the stored one."""
    user, created = TenantUser.objects.get_or_create(
        tenant=tenant, external_id=external_id, defaults={"display_name": display_name}
    )
    if not created and display_name and user.display_name != display_name:
        user.display_name = display_name
        user.save(update_fields=["display_name"])
    return user


_jwks_client: jwt.PyJWKClient | None = None


def _jwks() -> jwt.PyJWKClient:
    global _jwks_client
    if _jwks_client is None or _jwks_client.uri != settings.JWT_JWKS_URL:
        _jwks_client = jwt.PyJWKClient(settings.JWT_JWKS_URL, cache_keys=True, lifespan=300, timeout=5)
    return _jwks_client


def verify_user_token(token: str) -> tuple[Tenant, dict[str, Any]]:
    """Check a user JWT and return its tenant and claims. Raises AuthError.

    HS256 tokens are signed by the host app's backend with its tenant API secret and name
    the tenant in `iss`. RS256/ES256 tokens come from an external identity provider and
    are checked against JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE.
    """
    if len(token) > MAX_USER_TOKEN_CHARS:
        raise AuthError(f"The bearer token is longer than {MAX_USER_TOKEN_CHARS} characters.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("The bearer token is not a JWT.") from None
    algorithm = header.get("alg")
    leeway = settings.JWT_LEEWAY_SECONDS
    options: Any = {"require": ["exp", "sub"]}
    if algorithm == "HS256":
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("The bearer token is not a JWT.") from None
        issuer = unverified.get("iss")
        found = tenant_and_secret_for_key_id(issuer) if text_is_clean(issuer) else None
        if found is None:
            raise AuthError("The token's issuer is not a known API key.")
        tenant, secret = found
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=issuer, leeway=leeway, options=options)
        except jwt.ExpiredSignatureError:
            raise AuthError("The token has expired.") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"The token is not valid: {exc}.") from None
        return tenant, claims
    if algorithm in _USER_ALGORITHMS_EXTERNAL and settings.JWT_JWKS_URL:
        try:
            signing_key = _jwks().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=_USER_ALGORITHMS_EXTERNAL,
                issuer=settings.JWT_ISSUER or None,
                audience=settings.JWT_AUDIENCE or None,
                leeway=leeway,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("The token has expired.") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"The token is not valid: {exc}.") from None
        idp_tenant = Tenant.objects.filter(api_key_id=settings.JWT_JWKS_TENANT).first()
        if idp_tenant is None:
            raise AuthError("No tenant is configured for the external identity provider.")
        return idp_tenant, claims
    raise AuthError(f"Tokens signed with {algorithm!r} are not accepted.")


def _lifetime_checked(claims: dict[str, Any]) -> dict[str, Any]:
    """Refuse a token that stays valid longer than JWT_MAX_LIFETIME_SECONDS from now (`exp` in the year 9999
    would make a leaked token a credential forever). `exp` is present and numeric: PyJWT checked it."""
    horizon = time.time() + settings.JWT_MAX_LIFETIME_SECONDS + settings.JWT_LEEWAY_SECONDS
    if float(claims["exp"]) > horizon:
        raise AuthError(f"The token's lifetime exceeds {settings.JWT_MAX_LIFETIME_SECONDS} seconds.")
    return claims


def authenticate_user_token(token: str) -> Principal:
    tenant, claims = verify_user_token(token)
    _lifetime_checked(claims)
    subject = claims.get("sub")
    if not text_is_clean(subject):
        raise AuthError("The token's subject is missing or invalid.")
    name = claims.get("name")
    # A display name that cannot be stored is ignored rather than failing the sign-in.
    user = user_get_or_create(tenant=tenant, external_id=subject, display_name=name if text_is_clean(name) else "")
    return Principal(tenant=tenant, user=user)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        api_key = request.META.get("HTTP_X_API_KEY")
        if api_key is None:
            return None
        tenant = tenant_for_api_secret(api_key) if api_key else None
        if tenant is None:
            from rest_framework.exceptions import AuthenticationFailed

            raise AuthenticationFailed("The API key is not valid.")
        principal = Principal(tenant=tenant)
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"


class UserTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            from rest_framework.exceptions import AuthenticationFailed

            raise AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        try:
            principal = authenticate_user_token(token.strip())
        except AuthError as exc:
            from rest_framework.exceptions import AuthenticationFailed

            raise AuthenticationFailed(str(exc)) from None
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scaiwave"'


def touch_user(user: TenantUser) -> None:
    TenantUser.objects.filter(pk=user.pk).update(last_seen_at=timezone.now())
