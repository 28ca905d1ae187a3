"""Two ways to call `POST /v1/token` and `/v1/token/refresh`, so one test checks both.

- "drf": Django's test client, through the middleware and the DRF views (rooms.views).
- "fast": scaiwave.asgi.application over httpx's ASGI transport, where rooms.token_asgi answers before Django;
  the DRF view is made to fail if it is reached, so a request that silently fell through would show. Requests
  the fast path hands to Django on purpose (no X-API-Key) still stop at DRF's authentication, before the view.

The "fast" variant runs with a transactional database: the ASGI app reads it from worker threads.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

API_PATHS = ("fast", "drf")


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]  # lower-case names
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


class TokenAPI:
    def __init__(self, path: str) -> None:
        self.path = path

    def post(
        self,
        url: str,
        body: Any = None,
        *,
        key: str | None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST `body` as JSON (or `raw` bytes as application/json) with `key` as X-API-Key (None: no key)."""
        content = raw if raw is not None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            sent["X-API-Key"] = key
        if self.path == "drf":
            content_type = sent.pop("Content-Type")
            meta: dict[str, Any] = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in sent.items()}
            # Django sends bytes as they are (force_bytes); the stubs only know str.
            response = APIClient().generic("POST", url, content, content_type=content_type, **meta)  # type: ignore[arg-type]
            return Answer(response.status_code, {k.lower(): v for k, v in response.items()}, response.content)
        return asyncio.run(_asgi_post(url, content, sent))


async def _asgi_post(url: str, content: bytes, headers: dict[str, str]) -> Answer:
    from scaiwave.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(url, content=content, headers=headers)
    return Answer(response.status_code, dict(response.headers), response.content)


def _refuse_the_drf_view(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the request reached the DRF token view instead of rooms.token_asgi")


@pytest.fixture(params=[pytest.param(p, marks=pytest.mark.django_db(transaction=(p == "fast"))) for p in API_PATHS])
def token_api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, settings: Any) -> TokenAPI:
    if request.param == "fast":
        settings.TOKEN_FAST_PATH = True
        monkeypatch.setattr("rooms.views._token_response", _refuse_the_drf_view)
    return TokenAPI(request.param)
