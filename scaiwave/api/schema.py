"""OpenAPI pieces shared by every surface: the problem document and its responses."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

Problem = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Stable machine-readable code"),
        "error": serializers.CharField(help_text="Same as code"),
        "message": serializers.CharField(help_text="Same as detail"),
        "errors": serializers.JSONField(required=False, help_text="Field errors, for 400"),
    },
)


def problem(description: str, code: str = "error") -> OpenApiResponse:
    return OpenApiResponse(
        response=Problem,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={
                    "type": f"https://scaiwave.dev/problems/{code.replace('_', '-').lower()}",
                    "title": description,
                    "status": 0,
                    "detail": description,
                    "code": code,
                    "error": code,
                    "message": description,
                },
                response_only=True,
            )
        ],
    )


PROBLEM_RESPONSES = {
    401: problem("No or bad credentials", "auth_invalid"),
    403: problem("Not allowed", "forbidden"),
    429: problem("Rate limited", "rate_limited"),
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI document how X-API-Key authenticates (tenant server secret)."""

    target_class = "scaiwave.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The tenant's API secret."}


class UserTokenScheme(OpenApiAuthenticationExtension):
    """Bearer JWT: HS256 with the tenant secret (iss = API key id), or RS256/ES256 from the configured JWKS."""

    target_class = "scaiwave.api.auth.UserTokenAuthentication"
    name = "UserToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "HS256 signed with the tenant API secret: iss = API key id, sub = user id, exp required.",
        }


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_COMMON_STATUSES = {
    "400": "Bad request: the problem's `errors` member lists the fields",
    "401": "No or bad credentials",
    "403": "Not allowed",
    "404": "Not found (also another tenant's resources)",
    "413": "Request body too large",
    "415": "Unsupported media type",
    "429": "Rate limited (see Retry-After)",
}


def add_problem_responses(result: dict[str, Any], generator: object, request: object, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the problems any endpoint can answer,
    and every 4xx/5xx response is `application/problem+json` with the Problem schema."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Problem",
        {
            "type": "object",
            "description": "RFC 9457 problem details",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "code": {"type": "string", "description": "Stable machine-readable code"},
                "error": {"type": "string", "description": "Same as code"},
                "message": {"type": "string", "description": "Same as detail"},
                "errors": {"description": "Field errors (400)"},
            },
            "required": ["type", "title", "status", "detail", "code", "error", "message"],
            "additionalProperties": True,
        },
    )
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _COMMON_STATUSES.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                content = response.setdefault("content", {})
                schema = content.pop("application/json", {}).get("schema") or _PROBLEM_REF
                if schema.get("$ref", "").endswith("/Problem") or "application/problem+json" not in content:
                    content["application/problem+json"] = {"schema": schema if schema else _PROBLEM_REF}
    return result
