"""The live-calls surface in the OpenAPI document, and the LiveCall admin pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from calls.live_testing import document_schemas
from calls.models import LiveCall

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/v1/live/calls", "post"): {"201", "400", "401", "403", "502", "503"},
    ("/v1/live/calls", "get"): {"200", "400", "401"},
    ("/v1/live/calls/{live_call_id}", "get"): {"200", "401", "404"},
    ("/v1/live/calls/{live_call_id}", "delete"): {"204", "403", "404", "409"},
    ("/v1/live/calls/{live_call_id}/start", "post"): {"200", "403", "404", "409", "502", "503"},
    ("/v1/live/calls/{live_call_id}/end", "post"): {"200", "403", "404", "409"},
    ("/v1/live/calls/{live_call_id}/token", "post"): {"200", "404", "409", "502", "503"},
}


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_every_live_call_operation_is_documented_with_its_problems(openapi):
    for (path, method), statuses in OPERATIONS.items():
        operation = openapi["paths"][path][method]
        assert statuses <= set(operation["responses"]), (path, method, sorted(operation["responses"]))
        assert operation["operationId"].startswith("live_call")


def test_the_documented_create_body_names_every_field_the_contract_requires(openapi):
    ref = openapi["paths"]["/v1/live/calls"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    name = ref["$ref"].rsplit("/", 1)[-1]
    documented = set(openapi["components"]["schemas"][name]["properties"])
    assert set(document_schemas()["201"]["required"]) <= documented
    request_ref = openapi["paths"]["/v1/live/calls"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request_props = openapi["components"]["schemas"][request_ref["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert set(document_schemas()["request"]["properties"]) <= set(request_props)


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(user)
    return client


def test_the_live_call_admin_lists_shows_and_ends_through_the_service(operator, acme, livekit):
    alice = acme.user("alice")
    created = alice.post("/v1/live/calls", {"host_user_id": "alice", "title": "Admin AMA"}, format="json").json()
    alice.post(f"/v1/live/calls/{created['id']}/start")
    assert operator.get("/admin/calls/livecall/").status_code == 200
    page = operator.get(f"/admin/calls/livecall/{created['id']}/change/")
    assert page.status_code == 200 and b"Admin AMA" in page.content
    response = operator.post(
        "/admin/calls/livecall/", {"action": "end_live_calls", "_selected_action": [created["id"]]}, follow=True
    )
    assert response.status_code == 200
    live = LiveCall.objects.select_related("call").get(pk=created["id"])
    assert live.status == LiveCall.Status.ENDED and live.call is not None and live.call.status == "ended"
