"""The committed migrations describe exactly the current models (a forgotten `makemigrations` fails here)."""

from __future__ import annotations

from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector

from server.db import tortoise_config


async def test_models_have_no_unmigrated_changes() -> None:
    config = tortoise_config("sqlite://:memory:")
    apps = config["apps"]
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, apps).changes()
    pending = [operation for writer in writers for operation in writer.operations]
    assert not pending, f"models changed without a migration; run `tortoise makemigrations`: {pending}"
