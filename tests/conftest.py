"""Test harness: every test runs against a migrated database, SQLite by default, PostgreSQL when
DATABASE_URL points at one (CI runs the suite on both).

The schema is built once per session by the project's own migrations, then every test starts from
empty tables. Tests talk to the app as a client would: GraphQL over HTTP through httpx's ASGI
transport (or a real uvicorn where the transport matters).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from tortoise.context import TortoiseContext
from tortoise.contrib.test import truncate_all_models

from kernel import city, clock
from patrols import signboard
from server.app import create_app
from server.db import apply_migrations, tortoise_config
from server.settings import Limits, Settings

# Under `pytest -n N` (pytest-xdist) each worker process ("gw0", "gw1", ...) gets its own database and
# Redis database, so tests that wipe tables or count rate limits never see another worker's.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(WORKER.removeprefix("gw") or 0)

_TMP = Path(tempfile.mkdtemp(prefix="envcase-tests-"))
_GIVEN_DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite://{_TMP / 'test.sqlite3'}"
IS_POSTGRES = _GIVEN_DATABASE_URL.startswith(("postgres://", "postgresql://"))


def _worker_database_url(url: str) -> str:
    """PostgreSQL's `.../test` becomes `.../test_gw1` for worker gw1 (a SQLite file is already per
    process: `_TMP` is)."""
    if not (IS_POSTGRES and WORKER):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path}_{WORKER}"))


def _worker_redis_url(url: str) -> str:
    parts = urlsplit(url)
    database = (int(parts.path.strip("/") or 0) - _WORKER_INDEX) % 16
    return urlunsplit(parts._replace(path=f"/{database}"))


DATABASE_URL = _worker_database_url(_GIVEN_DATABASE_URL)
REDIS_URL = _worker_redis_url(os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15"))


async def _create_worker_database() -> None:
    import asyncpg

    given = _GIVEN_DATABASE_URL.replace("postgres://", "postgresql://", 1)
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    conn = await asyncpg.connect(given, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _reset_postgres() -> None:
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    if getattr(session.config.option, "numprocesses", None) and not WORKER:
        return  # the xdist controller runs no test: each worker prepares its own database

    async def prepare() -> None:
        if IS_POSTGRES:
            if WORKER:
                await _create_worker_database()
            await _reset_postgres()
        await apply_migrations(DATABASE_URL)

    try:
        asyncio.run(prepare())
    except (OSError, ConnectionError) as exc:
        # Under CI an unreachable PostgreSQL is a failure, never a silent skip.
        pytest.exit(f"cannot reach the test database {DATABASE_URL}: {exc}", returncode=1)


def pytest_report_header() -> str:
    return f"database: {DATABASE_URL}"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": DATABASE_URL,
        "media_root": _TMP / "media",
        "secret_key": "test-secret-key-not-for-production-use-0123456789",
        "environment": "development",
        "limits": Limits(requests_per_minute=100_000),
    }
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture
async def db() -> AsyncIterator[TortoiseContext]:
    ctx = TortoiseContext()
    async with ctx:
        await ctx.init(config=tortoise_config(DATABASE_URL))
        await truncate_all_models()
        yield ctx
    clock.set_clock(None)
    city.configure(None)  # the shipped calendar again: a test's stored years leave with its database
    signboard.forget()  # and its signboards


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(media_root=tmp_path / "media")


@pytest_asyncio.fixture
async def app(db: TortoiseContext, settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings, init_db=False)
    yield app
    await app.state.access_writer.close()  # as the server's shutdown does (httpx runs no lifespan)


@pytest.fixture
def access_log_written(app: Starlette) -> Callable[[], Awaitable[None]]:
    """Writes the access records the app still holds back (`identity.audit.GroupWriter`), for a test
    that reads the `access_log` table directly rather than through an admin's `accessLog`."""
    return app.state.access_writer.flush


@pytest_asyncio.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
