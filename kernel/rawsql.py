"""Reading many rows without the ORM's per-value conversion, for the hot paths (a 10,800-point track,
a county's quarter of patrols, a department queue page), where parsing values row by row costs more
than the query."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


def placeholders(conn: BaseDBAsyncClient, count: int, start: int = 1) -> list[str]:
    if conn.capabilities.dialect == "postgres":
        return [f"${i}" for i in range(start, start + count)]
    return ["?"] * count


def qmarks(conn: BaseDBAsyncClient, sql: str) -> str:
    """`sql` written with `?` marks, in the connection's dialect (PostgreSQL numbers them)."""
    if conn.capabilities.dialect != "postgres":
        return sql
    parts = sql.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, start=1))


async def fetch(conn: BaseDBAsyncClient, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of `sql`, whose parameters are written `{}` (turned into the dialect's placeholders)."""
    marks = placeholders(conn, sql.count("{}"))
    _, rows = await conn.execute_query(sql.format(*marks), list(params))
    return list(rows)  # sqlite3 rows or asyncpg records: both read by position


def as_datetime(value: Any) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite gives ISO text, PostgreSQL datetimes)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_seconds(value: Any) -> str:
    """A stored timestamp as W3C text in UTC to the second ('2026-05-01T14:03:09+00:00'). SQLite's
    spelling ('2026-05-01 14:03:09.123456+00:00', or without the offset: UTC) is cut, not parsed."""
    naive_or_utc = isinstance(value, str) and (value.endswith("+00:00") or len(value) in (19, 26))
    if naive_or_utc and value[10:11] == " ":
        return f"{value[:10]}T{value[11:19]}+00:00"
    return as_datetime(value).astimezone(UTC).isoformat(timespec="seconds")


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
