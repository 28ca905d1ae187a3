"""JSON request bodies, parsed with a bound on nesting.

Python's json module recurses once per level: a body nested about a thousand levels deep raised
RecursionError (a 500, not the ValueError DRF turns into 400), and a document a little shallower parsed
but broke later when it was encoded again (a token's `metadata`). Every JSON body is refused past
MAX_JSON_DEPTH levels before it is parsed. No legitimate body of any of the four documents comes close.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.utils import json as drf_json

MAX_JSON_DEPTH = 64

# A JSON string (its brackets do not count), then the brackets that are left.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONTooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if `text`, read as JSON, opens more than `limit` arrays/objects inside one another."""
    if text.count("[") + text.count("{") <= limit:  # the common case: cannot be deeper, no scan
        return False
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def json_loads_bounded(text: str | bytes) -> Any:
    """json.loads as DRF does it (NaN and Infinity refused), raising ValueError (JSONTooDeep, or a decoding
    or syntax error) for anything that is not a JSON document of at most MAX_JSON_DEPTH levels."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if json_too_deep(text):
        raise JSONTooDeep
    try:
        return drf_json.loads(text)
    except RecursionError:  # unreachable below the depth bound; kept so no input is ever a 500
        raise JSONTooDeep from None


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser with the depth bound (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding: str = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]  # not in drf-stubs yet
        try:
            return json_loads_bounded(stream.read().decode(encoding))
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class _AnyTypeJSONParser(JSONParser):
    """Parses a body declared as something else; one that is not JSON stays a 415."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError:
            raise UnsupportedMediaType(media_type or "") from None


class JSONWhateverTheType(DefaultContentNegotiation):
    """A view's `content_negotiation_class` that reads a JSON body whatever Content-Type it declares.

    Document 000's own example, `curl -X POST … -d '{"audio": true}'`, sends no type, so curl labels the
    body form-encoded: a body that parses as JSON is accepted. A declared JSON type goes through the view's
    own parsers as usual. (A negotiation class rather than a `*/*` parser, so the OpenAPI document still
    says application/json.)"""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return super().select_parser(request, parsers) or _AnyTypeJSONParser()
