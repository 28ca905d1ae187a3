"""Opaque keyset cursors: stable while rows are added, never offsets.

A cursor encodes the sort values of the last row returned; the next page starts
strictly after it, so new rows neither shift nor repeat what a client has seen.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import models

from scaiwave.api.errors import ProblemError

M = TypeVar("M", bound=models.Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


@dataclass
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProblemError(
            400, "validation_failed", "limit must be an integer.", errors={"limit": ["Not an integer."]}
        ) from None
    if value < 1 or value > maximum:
        raise ProblemError(
            400, "validation_failed", f"limit must be between 1 and {maximum}.", errors={"limit": ["Out of range."]}
        )
    return value


def _encode(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ProblemError(400, "invalid_cursor", "The cursor is not valid.", errors={"cursor": ["Invalid."]}) from None
    if not isinstance(values, list):
        raise ProblemError(400, "invalid_cursor", "The cursor is not valid.", errors={"cursor": ["Invalid."]})
    return values


def paginate(
    queryset: models.QuerySet[M],
    *,
    cursor: str | None,
    limit: int,
    order: tuple[str, str] = ("-created_at", "-pk"),
) -> Page[M]:
    """Return one page of `queryset` ordered by two fields (the second unique), newest first by default."""
    first, second = order
    fields = [first.lstrip("-"), second.lstrip("-")]
    descending = first.startswith("-")
    queryset = queryset.order_by(first, second)
    if cursor:
        values = _decode(cursor)
        if len(values) != 2:
            raise ProblemError(400, "invalid_cursor", "The cursor is not valid.", errors={"cursor": ["Invalid."]})
        op = "lt" if descending else "gt"
        try:
            after = models.Q(**{f"{fields[0]}__{op}": values[0]}) | models.Q(
                **{fields[0]: values[0], f"{fields[1]}__{op}": values[1]}
            )
            queryset = queryset.filter(after)
        except (ValueError, TypeError):
            raise ProblemError(
                400, "invalid_cursor", "The cursor is not valid.", errors={"cursor": ["Invalid."]}
            ) from None
    rows = list(queryset[: limit + 1])
    try:
        has_more = len(rows) > limit
    except Exception:  # pragma: no cover - evaluation errors surface above
        has_more = False
    items = rows[:limit]
    next_cursor = None
    if has_more and items:
        last = items[-1]
        next_cursor = _encode([getattr(last, fields[0]), getattr(last, fields[1])])
    return Page(items=items, next_cursor=next_cursor)
