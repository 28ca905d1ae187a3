"""rooms.serializers.token_request_fast, the check rooms.token_asgi runs before TokenRequestSerializer: whatever it
accepts, the serializer accepts and returns unchanged; everything else is left to the serializer."""

from __future__ import annotations

import pytest

from rooms.serializers import TokenRequestSerializer, token_request_fast

BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}

VALID = [
    BODY,
    {**BODY, "role": "host", "metadata": {"team": "blue"}},
    {**BODY, "metadata": {}},
    {**BODY, "name": "Zoë 🎉", "userId": "ü" * 255, "roomId": "r" * 200},
    {**BODY, "unknown": [1]},
]
SERIALIZER_DECIDES = [
    {**BODY, "name": " Alice"},  # kept as sent
    {**BODY, "roomId": 12},  # a number becomes a string
    {**BODY, "userId": "a\n"},  # a control character
    {**BODY, "name": ""},
    {**BODY, "name": "x" * 256},
    {**BODY, "name": "A\x00"},
    {**BODY, "name": "\ud800"},
    {**BODY, "roomId": "a/b"},
    {**BODY, "userId": "a\x7fb"},
    {**BODY, "role": "Host"},
    {**BODY, "role": ["host"]},
    {**BODY, "metadata": None},
    {**BODY, "metadata": "x"},
    {k: v for k, v in BODY.items() if k != "role"},
    [BODY],
    None,
]


@pytest.mark.parametrize("data", VALID)
def test_the_fast_check_returns_what_the_serializer_returns(data):
    serializer = TokenRequestSerializer(data=data)
    assert serializer.is_valid(), serializer.errors

    assert token_request_fast(data) == dict(serializer.validated_data)


@pytest.mark.parametrize("data", SERIALIZER_DECIDES)
def test_anything_the_serializer_would_change_or_refuse_is_left_to_it(data):
    assert token_request_fast(data) is None
