"""Serializer fields shared by the surfaces."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StringKeyDictField(serializers.DictField):
    """A DictField whose keys are held to what a CharField accepts: 1..key_max_length characters, no NUL and no
    unpaired surrogate. DRF's DictField validates values only, and PostgreSQL refuses both characters in JSONB
    keys, so such a key was a 500 at save time (found by make check-api). The error does not echo the key: a
    lone surrogate cannot be written in a UTF-8 answer."""

    default_error_messages = {
        "invalid_key": "Keys must be 1 to {max_length} characters, without NUL or unpaired surrogate characters."
    }

    def __init__(self, *args: Any, key_max_length: int = 256, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_max_length = key_max_length
        self.key_field = serializers.CharField(max_length=key_max_length, trim_whitespace=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        result: dict[str, Any] = super().to_internal_value(data)
        for key in result:
            try:
                self.key_field.run_validation(key)
            except serializers.ValidationError:
                self.fail("invalid_key", max_length=self.key_max_length)
        return result
