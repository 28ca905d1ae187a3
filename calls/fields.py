"""Serializer fields of the calls surfaces."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: the documents type these as `string`, so 7 or true is a 400 (DRF's
    CharField would turn 12345 into "12345" and look up a room of that name)."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))


# RFC 3339 section 5.6 date-time (what JSON Schema's `date-time` format means): a full date, "T", a full time
# and a required offset. Python's fromisoformat also takes dates alone, spaces and offset-less times, which it
# would read as the server's zone.
RFC3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


class Rfc3339DateTimeField(serializers.DateTimeField):
    """A date-time with its offset (`2026-12-31T17:00:00Z`, `...+02:00`); `2026-12-31T17:00:00` or `2026-12-31`
    is a 400, never guessed to be UTC."""

    default_error_messages = {
        "not_rfc3339": "Must be an RFC 3339 date-time with an offset, e.g. 2026-12-31T17:00:00Z.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str) or not RFC3339_DATE_TIME.fullmatch(value):
            self.fail("not_rfc3339")
        return super().to_internal_value(value)
