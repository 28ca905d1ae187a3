"""Schemathesis checks of our own (loaded through SCHEMATHESIS_HOOKS by scripts/check_api.py)."""

from __future__ import annotations

import json

import schemathesis

REQUIRED_PROBLEM_MEMBERS = ("type", "title", "status", "code")


@schemathesis.check
def problem_details_are_complete(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every error answer is an RFC 9457 problem with type, title, status and a stable code."""
    if response.status_code < 400:
        return None
    header = response.headers.get("content-type", [""])
    content_type = header[0] if isinstance(header, list) else str(header)
    if "application/problem+json" not in content_type:
        raise AssertionError(f"{response.status_code} answered with Content-Type {content_type!r}, not a problem")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError("problem body is not JSON") from None
    missing = [member for member in REQUIRED_PROBLEM_MEMBERS if member not in body]
    if missing:
        raise AssertionError(f"problem body lacks {missing}")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} != HTTP status {response.status_code}")
    return None
