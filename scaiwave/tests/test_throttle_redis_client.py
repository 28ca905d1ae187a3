"""The throttles' Redis client is one per process, whatever backend object Django's cache handler hands out."""

from __future__ import annotations

import asyncio
import contextvars
from typing import cast

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from scaiwave.api import throttling


def _backend_in_a_new_context() -> RedisCache:
    async def fetch() -> RedisCache:
        # What a flush sees: a request's own context, then a sync_to_async worker thread.
        return cast(RedisCache, await sync_to_async(lambda: caches["default"], thread_sensitive=False)())

    # A fresh context, as uvicorn starts each request from the server's context, where no cache was touched.
    return contextvars.Context().run(asyncio.run, fetch())


@pytest.mark.skipif(not isinstance(caches["default"], RedisCache), reason="needs the Redis cache (REDIS_URL)")
def test_flushes_from_new_request_contexts_share_one_client_and_pool():
    first, second = _backend_in_a_new_context(), _backend_in_a_new_context()
    assert first is not second  # the handler really gives each context its own backend (and so its own pool)
    client = throttling._redis_client(first)
    assert throttling._redis_client(second) is client
    pool = client.connection_pool
    # The client is process-wide: earlier tests (the failed-auth throttle's counts) may have opened connections.
    opened_before = len(pool._available_connections) + len(pool._in_use_connections)
    for _ in range(5):
        flush = sync_to_async(throttling._add_hits, thread_sensitive=False)
        contextvars.Context().run(asyncio.run, flush("throttle:test:pool", 1, ttl=5))
    # Every flush went through the one pool: it never needed more than one connection, one at a time.
    assert len(pool._available_connections) + len(pool._in_use_connections) == max(opened_before, 1)
