"""What the benchmarks that bulk-load rows share."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from kernel.rawsql import placeholders

# The columns a bulk-loaded case sets: the NOT NULL ones and what the pages read.
CASE_COLUMNS = [
    "id",
    "reference",
    "latitude",
    "longitude",
    "public_latitude",
    "public_longitude",
    "status",
    "version",
    "priority",
    "response_due_at",
    "resolution_due_at",
    "reporter_count",
    "report_count",
    "routing_reason",
    "public",
    "last_reported_at",
    "created_at",
    "updated_at",
    "category_id",
    "department_id",
    "resolution_note",
    "resolution_photo_ids",
    "rework_count",
    "sla_extension",
    "sla_pauses",
    "status_changed_at",
    "summary",
]


async def bulk_insert(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    json_columns: Collection[str] = (),
) -> None:
    """Multi-row INSERTs of up to 1,000 rows (well under both engines' parameter limits); values of
    `json_columns` are given as JSON text."""
    postgres = conn.capabilities.dialect == "postgres"
    json_at = {i for i, name in enumerate(columns) if name in json_columns}
    for begin in range(0, len(rows), 1000):
        chunk = rows[begin : begin + 1000]
        marks = iter(placeholders(conn, len(chunk) * len(columns)))
        tuples = []
        for _ in chunk:
            values = [next(marks) for _ in columns]
            if postgres:  # JSON goes as text, whatever codec the driver has for jsonb
                values = [
                    f"CAST(CAST({v} AS TEXT) AS JSONB)" if i in json_at else v for i, v in enumerate(values)
                ]
            tuples.append(f"({', '.join(values)})")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(tuples)}"
        await conn.execute_query(sql, [value for row in chunk for value in row])


async def load_cases(url: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Bulk-load `CASE_COLUMNS` rows into the cases of the database at `url` (COPY on PostgreSQL,
    one executemany on SQLite), then refresh the planner's statistics as autovacuum soon would."""
    if url.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.copy_records_to_table("cases", records=rows, columns=CASE_COLUMNS)
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"
            )
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        return
    db = sqlite3.connect(url.removeprefix("sqlite://"))
    marks = ", ".join("?" * len(CASE_COLUMNS))
    try:
        with db:
            db.executemany(
                f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({marks})",
                (tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in row) for row in rows),
            )
        db.execute("ANALYZE")
    finally:
        db.close()
