"""Open311 tests run against the seeded demo city, with service-account keys made through the API."""

from __future__ import annotations

import pytest_asyncio
from tortoise.context import TortoiseContext

from server.seed import seed_demo


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()
