from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from tests.conftest import make_settings
from tests.media.s3_server import s3_server  # noqa: F401 (a session fixture: moto's S3 server)


@pytest.fixture
def make_app_client(tmp_path: Path) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A client of an app with some settings changed (use inside a test that has the `db` fixture)."""

    @asynccontextmanager
    async def app_client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(media_root=tmp_path / "media", **overrides), init_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client

    return app_client
