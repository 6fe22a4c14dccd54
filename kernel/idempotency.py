"""Create-once semantics for requests a phone may retry.

The client generates an id for each thing it creates. A retry with the same id and the same content
returns the first result; the same id with other content is a CONFLICT; two concurrent requests with
the same id create one row (the database's unique constraint decides, the loser re-reads).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from kernel.database import atomic
from kernel.errors import conflict

M = TypeVar("M", bound=Model)


def fingerprint(content: Any) -> str:
    """A stable hash of a request's meaningful content (canonical JSON)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_or_conflict(row: M, print_: str, field: str) -> M:
    # Every idempotent model has a `fingerprint` column; Model's type cannot say so.
    if row.fingerprint != print_:  # type: ignore[attr-defined]
        raise conflict("This client id was already used for different content.", "input", field)
    return row


async def create_once(
    model: type[M],
    *,
    lookup: dict[str, Any],
    content_fingerprint: str,
    create: Callable[[], Awaitable[M]],
    field: str = "clientId",
) -> tuple[M, bool]:
    """Return (row, created). `model` must have a `fingerprint` column and a unique key on `lookup`."""
    existing = await model.get_or_none(**lookup)
    if existing is not None:
        return _same_or_conflict(existing, content_fingerprint, field), False
    try:
        async with atomic():  # a savepoint when nested, so a lost race leaves the outer one usable
            return await create(), True
    except IntegrityError:
        existing = await model.get_or_none(**lookup)
        if existing is None:
            raise
        return _same_or_conflict(existing, content_fingerprint, field), False
