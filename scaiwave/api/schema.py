"""OpenAPI pieces shared by every surface: the problem document and its responses."""

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
