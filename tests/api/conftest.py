"""What the API tests that run real servers share: the Redis they publish live updates through."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    await client.aclose()
