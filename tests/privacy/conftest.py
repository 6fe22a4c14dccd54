from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from server.seed import seed_demo
from server.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A test may override some: `@pytest.mark.parametrize("settings", [{...}], indirect=True)`."""
    overrides = getattr(request, "param", {})
    return make_settings(media_root=tmp_path / "media", access_token_seconds=30 * 86400, **overrides)


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()
