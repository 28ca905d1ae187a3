"""The OpenAPI document describes the rooms surface: paths, problem responses, examples."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/v1/token", "post", {"200", "400", "401", "403", "503"}),
        ("/v1/token/refresh", "post", {"200", "400", "401", "403"}),
        ("/v1/rooms", "post", {"201", "400", "401", "409", "502", "503"}),
        ("/v1/rooms", "get", {"200", "401"}),
        ("/v1/rooms/{room_id}", "get", {"200", "404", "401"}),
        ("/v1/rooms/{room_id}", "delete", {"204", "404"}),
        ("/v1/rooms/{room_id}/participants", "get", {"200", "404"}),
        ("/v1/rooms/{room_id}/participants/{participant_id}", "delete", {"204", "404"}),
        ("/v1/rooms/{room_id}/participants/{participant_id}/mute", "post", {"204", "400", "404"}),
        ("/v1/rooms/{room_id}/ingress", "post", {"201", "400", "404"}),
        ("/v1/rooms/{room_id}/ingress", "get", {"200", "404"}),
        ("/v1/rooms/{room_id}/ingress/{ingress_id}", "delete", {"204", "404"}),
        ("/v1/rooms/{room_id}/members", "get", {"200", "404"}),
        ("/v1/rooms/{room_id}/members/{user_id}", "put", {"200", "201", "400", "404"}),
        ("/v1/rooms/{room_id}/members/{user_id}", "delete", {"204", "404"}),
        ("/v1/calls/webhook", "post", {"200", "401"}),
    ],
)
def test_each_endpoint_documents_its_answers(schema, path, method, statuses):
    operation = schema["paths"][path][method]

    assert statuses <= set(operation["responses"])


def test_room_creation_documents_the_conflict_and_an_example(schema):
    operation = schema["paths"]["/v1/rooms"]["post"]

    assert "room_exists" in str(operation["responses"]["409"])
    assert "examples" in operation["requestBody"]["content"]["application/json"]
