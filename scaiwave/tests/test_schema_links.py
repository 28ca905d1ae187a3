"""OpenAPI links (scaiwave/api/schema_links.py): present, checked when the schema is built, and they work: the
value a create operation returns, put where the link says, reaches the resource through every linked operation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from rooms.testing import livekit, livekit_emulator  # noqa: F401
from scaiwave.api import schema_links
from scaiwave.api.schema_links import LINKS, Link, SchemaLinkError, add_links

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema")
    assert response.status_code == 200
    return dict(yaml.safe_load(response.content))


def _operations(schema: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }


def test_every_link_in_the_table_is_on_each_success_response_of_its_source(schema):
    operations = _operations(schema)
    for link in LINKS:
        _, _, source = operations[link.source]
        successes = [r for code, r in source["responses"].items() if code.startswith("2")]
        assert successes, link
        for response in successes:
            assert response["links"][link.target] == {"operationId": link.target, "parameters": link.parameters}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Link("room_create", "no_such_operation", {"room_id": "$response.body#/name"}), "no such operation"),
        (Link("room_create", "room_get", {"roomId": "$response.body#/name"}), "has no {roomId}"),
        (Link("room_create", "room_get", {"room_id": "$response.body#/roomId"}), "no /roomId in the body"),
        (Link("room_create", "room_get", {"room_id": "$request.path.room_id"}), "/v1/rooms has no"),
    ],
)
def test_a_dangling_link_fails_the_schema_build(schema, monkeypatch, bad, message):
    without_links = copy.deepcopy(schema)
    for item in without_links["paths"].values():
        for op in item.values():
            for response in op.get("responses", {}).values() if isinstance(op, dict) else ():
                response.pop("links", None)
    monkeypatch.setattr(schema_links, "LINKS", (bad,))
    with pytest.raises(SchemaLinkError, match=message):
        add_links(without_links, None, None, True)


def _value(expression: str, request_path: dict[str, str], body: Any) -> str:
    if expression.startswith("$request.path."):
        return request_path[expression.rsplit(".", 1)[-1]]
    value = body
    for part in expression.split("#", 1)[1].strip("/").split("/"):
        value = value[part]
    return str(value)


def _follow(client: APIClient, schema: dict[str, Any], source: str, request_path: dict[str, str], body: Any) -> list:
    """Call every operation linked from `source` with the linked values, deletes last. Returns (target, answer):
    the status for a success, "status code" for a problem."""
    operations = _operations(schema)
    answers = []
    links = [link for link in LINKS if link.source == source]
    for link in sorted(links, key=lambda link: operations[link.target][1] == "delete"):
        path, method, _ = operations[link.target]
        for name, expression in link.parameters.items():
            path = path.replace("{" + name + "}", _value(expression, request_path, body))
        data = {"url": "http://127.0.0.1:9/hook"} if method == "patch" else {}
        response = getattr(client, method)(path, data, format="json")
        answer = (
            response.status_code if response.status_code < 400 else f"{response.status_code} {response.json()['code']}"
        )
        answers.append((link.target, answer))
    return answers


def test_following_the_webhook_links_reaches_the_created_endpoint(acme, schema):
    client = acme.server()
    created = client.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["*"]}, format="json")
    assert created.status_code == 201, created.content
    answers = _follow(client, schema, "webhooks_create", {}, created.json())
    assert len(answers) == 5 and all(isinstance(status, int) for _, status in answers), answers
    assert client.get(f"/v1/webhooks/{created.json()['id']}").status_code == 404  # the linked DELETE took it


@pytest.mark.usefixtures("livekit")
def test_following_the_room_and_member_links_reaches_the_created_room(acme, schema):
    client = acme.server()
    created = client.post("/v1/rooms", {"name": "linked"}, format="json")
    assert created.status_code == 201, created.content
    member = client.put("/v1/rooms/linked/members/alice", {"powerLevel": 50}, format="json")
    assert member.status_code == 201, member.content
    answers = _follow(client, schema, "member_set", {"room_id": "linked", "user_id": "alice"}, member.json())
    assert answers == [("member_remove", 204)]
    answers = _follow(client, schema, "room_create", {}, created.json())
    # The room has no live transcription: that read is a 404 about the transcription, not about the room.
    expected = {"room_transcription_get": "404 transcription_not_found"}
    bad = [(target, status) for target, status in answers if status != expected.get(target, status) or
           (target not in expected and not isinstance(status, int))]  # fmt: skip
    assert len(answers) == len(schema_links.ROOM_OPERATIONS) and not bad, answers
    assert client.get("/v1/rooms/linked").status_code == 404
