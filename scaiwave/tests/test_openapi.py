"""The OpenAPI document is the contract the API is held to: served offline, complete for every operation."""

from __future__ import annotations

import pytest
import yaml
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_schema_is_openapi_3_1(schema):
    assert schema["openapi"].startswith("3.1")
    assert {"ApiKey", "UserToken"} <= set(schema["components"]["securitySchemes"])


def test_every_error_response_is_a_problem_document(schema):
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status.isdigit() and int(status) >= 400:
                assert "application/problem+json" in response.get("content", {}), (path, method, status)


def test_every_operation_documents_auth_failures_and_its_success(schema):
    for path, method, operation in operations(schema):
        statuses = set(operation["responses"])
        assert "401" in statuses and "429" in statuses, (path, method)
        assert any(s.startswith(("2", "3")) for s in statuses), (path, method)


def test_swagger_ui_is_served_without_a_cdn():
    response = APIClient().get("/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn." not in page and "unpkg.com" not in page
