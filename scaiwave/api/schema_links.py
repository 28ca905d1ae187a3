"""OpenAPI links: how the id a create operation returns feeds the operations on that resource.

A client generator can follow them, and schemathesis' stateful phase (`make check-api`) chains calls through
them: create a room, then read, list the members of and delete *that* room, rather than guessing ids that
never exist and only ever testing the 404s.

The table is checked when the schema is built (a drf-spectacular post-processing hook): a link naming an
operation, a path parameter or a response field the schema does not have fails the build, and so the schema
tests, rather than shipping a dangling link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Link:
    source: str  # operationId whose success answers carry the value
    target: str  # operationId the value is a parameter of
    parameters: dict[str, str]  # target path parameter -> runtime expression


def _from_body(pointer: str) -> str:
    return f"$response.body#{pointer}"


def _same(*names: str) -> dict[str, str]:
    """Parameters the target takes from the source request's own path."""
    return {name: f"$request.path.{name}" for name in names}


ROOM_OPERATIONS = (
    "room_get", "room_delete", "member_list", "participant_list", "ingress_list", "ingress_create",
    "v1_rooms_calls_retrieve", "v1_rooms_timeline_retrieve", "v1_rooms_recording_retrieve",
    "room_transcription_get",
)  # fmt: skip
WEBHOOK_OPERATIONS = (
    "webhooks_get", "webhooks_update", "webhooks_delete", "webhooks_deliveries_list", "webhooks_rotate_secret",
)  # fmt: skip
CALL_OPERATIONS = (
    "v1_calls_retrieve", "v1_calls_join_create", "v1_calls_leave_create", "v1_calls_end_create",
    "v1_calls_reject_create", "v1_calls_recordings_retrieve",
)  # fmt: skip
LIVE_CALL_OPERATIONS = ("live_call_retrieve", "live_call_start", "live_call_end", "live_call_token", "live_call_delete")
UPLOADED_CALL_OPERATIONS = ("call_get", "call_analysis", "call_transcript", "call_delete")
RECORDING_OPERATIONS = ("v1_recordings_retrieve", "recording_transcribe", "v1_recordings_destroy")
TRANSCRIPTION_OPERATIONS = ("transcription_get", "transcription_delete")

LINKS: tuple[Link, ...] = (
    *(Link("room_create", t, {"room_id": _from_body("/name")}) for t in ROOM_OPERATIONS),
    *(Link("webhooks_create", t, {"webhookId": _from_body("/id")}) for t in WEBHOOK_OPERATIONS),
    *(Link("v1_calls_initiate_create", t, {"call_id": _from_body("/data/call_id")}) for t in CALL_OPERATIONS),
    *(Link("live_calls_create", t, {"live_call_id": _from_body("/id")}) for t in LIVE_CALL_OPERATIONS),
    *(Link("call_analyze", t, {"call_id": _from_body("/callId")}) for t in UPLOADED_CALL_OPERATIONS),
    *(
        Link("v1_rooms_recording_start_create", t, {"recording_id": _from_body("/recordingId")})
        for t in RECORDING_OPERATIONS
    ),
    *(
        Link("recording_transcribe", t, {"transcription_id": _from_body("/transcriptionId")})
        for t in TRANSCRIPTION_OPERATIONS
    ),
    Link("ingress_create", "ingress_delete", {**_same("room_id"), "ingress_id": _from_body("/ingressId")}),
    Link("member_set", "member_remove", _same("room_id", "user_id")),
)


class SchemaLinkError(Exception):
    pass


def _operations(result: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    found = {}
    for path, item in result["paths"].items():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                found[operation["operationId"]] = (path, operation)
    return found


def _resolve(result: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = result["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _has_pointer(result: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    for part in pointer.strip("/").split("/"):
        schema = _resolve(result, schema)
        candidates = [_resolve(result, s) for s in schema.get("allOf", [])] or [schema]
        nxt = next((c["properties"][part] for c in candidates if part in c.get("properties", {})), None)
        if nxt is None:
            return False
        schema = nxt
    return True


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: put LINKS on the source operations' success responses."""
    operations = _operations(result)
    for link in LINKS:
        if link.source not in operations or link.target not in operations:
            raise SchemaLinkError(f"link {link.source} -> {link.target}: no such operation")
        target_path, _ = operations[link.target]
        source_path, source = operations[link.source]
        successes = {code: r for code, r in source["responses"].items() if code.startswith("2")}
        for name, expression in link.parameters.items():
            if "{" + name + "}" not in target_path:
                raise SchemaLinkError(f"link {link.source} -> {link.target}: {target_path} has no {{{name}}}")
            if expression.startswith("$request.path.") and "{" + expression.rsplit(".", 1)[-1] + "}" not in source_path:
                raise SchemaLinkError(f"link {link.source} -> {link.target}: {source_path} has no {expression}")
            if expression.startswith("$response.body#"):
                pointer = expression.split("#", 1)[1]
                for code, response in successes.items():
                    body = response.get("content", {}).get("application/json", {}).get("schema", {})
                    if not _has_pointer(result, body, pointer):
                        raise SchemaLinkError(f"link {link.source} {code} -> {link.target}: no {pointer} in the body")
        for response in successes.values():
            links = response.setdefault("links", {})
            links[f"{link.target}"] = {"operationId": link.target, "parameters": dict(link.parameters)}
    return result
