"""The PostgreSQL database the benchmarks measure, and wiping it before they seed.

Benchmarks drop and recreate the public schema of the database they are given, so the default is a
dedicated `bench` database, never one holding data; it is created when missing, so a fresh machine
with a running PostgreSQL needs no setup. CI points `BENCH_POSTGRES_URL` at its test database.
"""

from __future__ import annotations

import os
import urllib.parse

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench"


def postgres_url() -> str:
    """`BENCH_POSTGRES_URL`, or the local `bench` database (wiped by every run, so no one's data)."""
    return os.environ.get("BENCH_POSTGRES_URL", DEFAULT_URL)


async def reset_postgres(url: str) -> None:
    """Empty the database's public schema, creating the database first if it does not exist.

    A missing database is created from the server's `postgres` maintenance database, so the default
    `bench` database appears on first use. An unreachable server still fails at connect (within 5 s),
    which the benchmarks report as "not reachable, skipped".
    """
    import asyncpg

    dsn = url.replace("postgres://", "postgresql://", 1)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        await _create_database(dsn)
        conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


async def _create_database(dsn: str) -> None:
    import asyncpg

    name = urllib.parse.unquote(urllib.parse.urlsplit(dsn).path.lstrip("/"))
    if not name:
        raise ValueError(f"no database name in {dsn!r}")
    conn = await asyncpg.connect(dsn, database="postgres", timeout=5)
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"CREATE DATABASE {quoted}")
    except asyncpg.DuplicateDatabaseError:
        pass  # another benchmark process created it meanwhile
    finally:
        await conn.close()
