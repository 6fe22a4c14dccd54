"""Tortoise ORM configuration and the migration entry point.

All models live in one Tortoise app ("models") so foreign keys can cross packages by name
("models.Department") without the packages importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from server.settings import default_database_url

MODEL_MODULES = [
    "kernel.outbox",
    "kernel.city",
    "identity.models",
    "media.models",
    "reports.models",
    "patrols.models",
    "patrols.chain_models",
    "delivery.models",
    "notifications.models",
    "webhooks.models",
    "trusted.models",
    "exports.models",
]


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = database_url
    if database_url.startswith("sqlite://") and not database_url.startswith("sqlite://:memory:"):
        Path(database_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
        # Write transactions that wait for another process's instead of failing (kernel/sqlite_engine.py).
        connection = {**expand_db_url(database_url), "engine": "kernel.sqlite_engine"}
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "server.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _default_url() -> str:
    return os.environ.get("DATABASE_URL") or default_database_url()


# For the `tortoise` command line (makemigrations, history, sqlmigrate): see [tool.tortoise].
TORTOISE_ORM = tortoise_config(_default_url())


async def apply_migrations(database_url: str) -> None:
    """Bring the database schema up to date; safe to run on every start."""
    try:
        await tortoise_migrate(config=tortoise_config(database_url))
    finally:
        # The migration API leaves its connections open (an aiosqlite thread would keep the process alive).
        await Tortoise.close_connections()
