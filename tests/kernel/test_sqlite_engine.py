"""A second process writing to the server's SQLite file (a command-line job) makes a transaction wait,
never fail with "database is locked". Runs on its own SQLite file under both suite runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tortoise.backends.sqlite.client import SqliteClient
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from kernel.sqlite_engine import ImmediateSqliteClient


async def _open(kind: type[SqliteClient], path: Path, name: str) -> SqliteClient:
    client = kind(str(path), connection_name=name, journal_mode="WAL")
    await client.create_connection(with_db=True)
    return client


async def _read_then_write_while_another_commits(kind: type[SqliteClient], path: Path) -> list[str]:
    """Client `server` reads, then writes, in one transaction; client `job` writes in between."""
    server, job = await _open(kind, path, "server"), await _open(kind, path, "job")
    try:
        async with TortoiseContext():  # a transaction registers its connection in the context
            await server.execute_script("CREATE TABLE IF NOT EXISTS t (who TEXT)")
            async with server._in_transaction() as transaction:
                await transaction.execute_query("SELECT count(*) FROM t")
                other = asyncio.create_task(job.execute_query("INSERT INTO t VALUES ('job')"))
                await asyncio.sleep(0.2)  # the job's INSERT runs now, in its own thread
                await transaction.execute_query("INSERT INTO t VALUES ('server')")
            await other
            _, rows = await server.execute_query("SELECT who FROM t ORDER BY rowid")
            return [row["who"] for row in rows]
    finally:
        await server.close()
        await job.close()


async def test_a_write_transaction_waits_for_the_other_process(tmp_path: Path) -> None:
    # The server's transaction holds the write lock from BEGIN; the job waits, then writes after it.
    order = await _read_then_write_while_another_commits(ImmediateSqliteClient, tmp_path / "db.sqlite3")
    assert order == ["server", "job"]


async def test_tortoise_stock_engine_fails_the_same_transaction(tmp_path: Path) -> None:
    # Why the engine exists: with a deferred BEGIN the job commits first and the server's write fails.
    with pytest.raises(OperationalError, match="database is locked"):
        await _read_then_write_while_another_commits(SqliteClient, tmp_path / "db.sqlite3")
