"""scaiwave.api.fields.StringKeyDictField: keys are held to what a CharField accepts."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from scaiwave.api.fields import StringKeyDictField


class _Map(serializers.Serializer):
    speakers = StringKeyDictField(child=serializers.CharField(), key_max_length=8)


@pytest.mark.parametrize("key", ["\x00", "a\x00", "\udaa9", "", "123456789"])
def test_keys_a_charfield_would_refuse_are_refused_without_echoing_them(key):
    serializer = _Map(data={"speakers": {key: "Alice"}})
    assert not serializer.is_valid()
    message = str(serializer.errors["speakers"][0])
    assert message == "Keys must be 1 to 8 characters, without NUL or unpaired surrogate characters."
    assert serializer.errors["speakers"][0].code == "invalid_key"


@pytest.mark.parametrize("key", ["TR_a", " x ", "Zoë", "\U0001f600"])
def test_ordinary_keys_are_kept_as_sent(key):
    serializer = _Map(data={"speakers": {key: "Alice", "b": "Bob"}})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["speakers"] == {key: "Alice", "b": "Bob"}
