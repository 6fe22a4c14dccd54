"""Tortoise's SQLite engine, with write transactions that wait for each other across processes.

One server process owns the SQLite file, but the command line (`envcase escalate`, `retention`,
`prune-outbox`, a standalone `worker`) opens it too. Tortoise starts a transaction with a plain
`BEGIN`, which takes the write lock only at the first write: if another process committed since the
transaction's first read, SQLite answers "database is locked" at once (SQLITE_BUSY_SNAPSHOT), and
the busy timeout cannot help, because waiting would not make the snapshot current. `BEGIN IMMEDIATE`
takes the write lock up front, so a second writer waits out the busy timeout instead of failing.

Within one process nothing changes: Tortoise already runs one transaction at a time on its single
connection. Selected by `server.db.tortoise_config` for every `sqlite://` file URL.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

# How long a writer waits for another process's transaction before "database is locked" (seconds).
BUSY_TIMEOUT_MS = 5000


class ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def __init__(self, file_path: str, **kwargs: object) -> None:
        kwargs.setdefault("busy_timeout", BUSY_TIMEOUT_MS)  # a pragma, like Tortoise's journal_mode
        super().__init__(file_path, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransaction(self), self._lock)


client_class = ImmediateSqliteClient
