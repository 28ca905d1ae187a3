"""Test support for live calls: document 003's JSON schemas, read from the document's own text.

The schemas are not copied into the tests: a change to the contract document changes what the tests check.
The document is the copy kept in the repository, `docs/contracts/` (its README says where it comes from).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

DOCUMENT = "003_cdc72b59c9928318.txt"
# The headings that precede each JSON block in the document.
SECTIONS = {
    "request": "Request body",
    "201": "201 Call created",
    "502": "502 Streaming provider error",
    "503": "503 Streaming provider not configured",
}


def document_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "contracts" / DOCUMENT


@lru_cache(maxsize=1)
def document_schemas() -> dict[str, dict[str, Any]]:
    """{"request"|"201"|"502"|"503": the JSON schema printed under that heading}. Raises if one is missing."""
    text = document_path().read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    schemas: dict[str, dict[str, Any]] = {}
    for key, heading in SECTIONS.items():
        at = text.index(heading)
        start = text.index("{", at + len(heading))
        schema, _ = decoder.raw_decode(text, start)
        schemas[key] = schema
    return schemas
