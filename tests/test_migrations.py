"""The committed migrations describe exactly the current models (a forgotten `makemigrations` fails here), and
the ones that move data move it right."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from server.db import apply_migrations, tortoise_config


async def test_models_have_no_unmigrated_changes() -> None:
    config = tortoise_config("sqlite://:memory:")
    apps = config["apps"]
    async with tortoise_cli_context(config) as ctx:
        assert ctx.apps is not None
        writers = await MigrationAutodetector(ctx.apps, apps).changes()
    pending = [operation for writer in writers for operation in writer.operations]
    assert not pending, f"models changed without a migration; run `tortoise makemigrations`: {pending}"


def _insert(db: sqlite3.Connection, table: str, **given: object) -> int:
    """A row with `given` and a plain value in every other required column (raw SQL: the models are
    newer than the schema being tested)."""
    filler = {"INT": 1, "REAL": 0.0, "FLOAT": 0.0, "JSON": "[]", "TIMESTAMP": "2026-03-09T02:00:00+00:00"}
    values = dict(given)
    for _, name, kind, notnull, default, primary in db.execute(f"PRAGMA table_info({table})"):
        if notnull and default is None and not primary and name not in values:
            values[name] = next((v for k, v in filler.items() if k in kind.upper()), "x")
    columns = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" * len(values))
    row_id = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())).lastrowid
    assert row_id is not None
    return row_id


async def test_cases_keep_their_categorys_policy_through_0010(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    config = tortoise_config(f"sqlite://{path}")
    try:
        await tortoise_migrate(config=config, target="models.0009_statistics")
    finally:
        await Tortoise.close_connections()
    with closing(sqlite3.connect(path)) as db, db:  # closed, and committed
        category = _insert(db, "categories", code="noise.industrial", sla_policy="complaint_15wd")
        case = _insert(db, "cases", reference="2026-000001", category_id=category, status="ROUTED")
    await apply_migrations(f"sqlite://{path}")
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT sla_policy FROM cases WHERE id = ?", [case]).fetchall() == [
            ("complaint_15wd",)
        ]


async def test_photos_of_cases_off_the_map_become_private_in_0018(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    config = tortoise_config(f"sqlite://{path}")
    try:
        await tortoise_migrate(config=config, target="models.0017_retention")
    finally:
        await Tortoise.close_connections()
    with closing(sqlite3.connect(path)) as db, db:
        photos = [_insert(db, "photos", sha256=f"{n:064x}", public=1) for n in range(4)]
        rejected = _insert(db, "cases", reference="2026-000001", status="REJECTED", public=0,
                           resolution_photo_ids=f"[{photos[1]}]")  # fmt: skip
        shown = _insert(db, "cases", reference="2026-000002", status="ROUTED", public=1)
        _insert(db, "reports", client_id="a", case_id=rejected, photo_ids=f"[{photos[0]}]")
        _insert(db, "reports", client_id="b", case_id=shown, photo_ids=f"[{photos[2]}]")
    await apply_migrations(f"sqlite://{path}")
    with closing(sqlite3.connect(path)) as db:
        public = dict(db.execute("SELECT id, public FROM photos").fetchall())
    # A rejected case's report and resolution photos leave the map; a public case's and one no case
    # holds keep their flag.
    assert [public[p] for p in photos] == [0, 0, 1, 1]


async def test_upload_sessions_keep_their_rows_indexes_and_unique_client_id_through_0022(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    config = tortoise_config(f"sqlite://{path}")
    try:
        await tortoise_migrate(config=config, target="models.0021_trusted_documents")
    finally:
        await Tortoise.close_connections()
    with closing(sqlite3.connect(path)) as db, db:
        owner = _insert(db, "users")
        db.execute(
            "INSERT INTO upload_sessions (id, owner_id, client_id, fingerprint, byte_size, sha256, received,"
            " expires_at, created_at) VALUES ('6f1c6f3e-0000-4000-8000-000000000001', ?, 'IMG_1', 'f', 10,"
            " 'ab', 4, '2026-03-09T02:00:00+00:00', '2026-03-09T02:00:00+00:00')",
            [owner],
        )
    await apply_migrations(f"sqlite://{path}")
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT client_id, sha256, received FROM upload_sessions").fetchall() == [
            ("IMG_1", "ab", 4)
        ]
        indexed = {row[1] for row in db.execute("PRAGMA index_list(upload_sessions)")}
        unique = [row[1] for row in db.execute("PRAGMA index_list(upload_sessions)") if row[2]]
        columns = {name: [c[2] for c in db.execute(f'PRAGMA index_info("{name}")')] for name in indexed}
        assert ["owner_id", "client_id"] in [columns[name] for name in unique]
        assert ["sha256"] in columns.values() and ["expires_at"] in columns.values()
        with pytest.raises(sqlite3.IntegrityError):
            _insert(
                db,
                "upload_sessions",
                id="6f1c6f3e-0000-4000-8000-000000000002",
                owner_id=owner,
                client_id="IMG_1",
            )
