from __future__ import annotations

import pytest_asyncio
from tortoise.context import TortoiseContext

from server.seed import seed_demo


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    """The demo city: jurisdictions, departments, categories, national and city routing rules, accounts."""
    await seed_demo()
