"""Serializer fields of the calls surfaces."""

from __future__ import annotations

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
