"""Planning: each committed outbox row becomes the deliveries it calls for, once.

A planner is given one outbox row inside the planning transaction. It returns unsaved deliveries
and may write its own rows beside them (the in-app inbox), so a change is planned entirely or not
at all. On PostgreSQL rows are claimed FOR UPDATE SKIP LOCKED, so several workers plan side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from tortoise.connection import connections

from delivery.models import Delivery
from delivery.service import enqueue
from kernel import clock
from kernel.database import atomic
from kernel.outbox import OutboxEvent

Planner = Callable[[OutboxEvent], Awaitable[Sequence[Delivery]]]

log = logging.getLogger("delivery.planning")

# The key of the PostgreSQL advisory lock that lets one worker at a time plan: planning in outbox
# order keeps a case's deliveries in the order of its changes (their ids are its sending order).
_PLANNING_LOCK = 0x656E76_0D31  # "env" + delivery: any constant unused elsewhere in the database


async def plan_pending(planners: Sequence[Planner], limit: int = 200) -> int:
    """Plan the oldest unplanned outbox rows (up to `limit`), in id order; returns how many were planned.

    Each row is planned in one transaction (a savepoint on PostgreSQL): every planner's deliveries
    and own rows, and its `planned_at`, or nothing. A planner that raises leaves its row unplanned
    (logged); the next pass tries it again. With no planners nothing is planned, so rows written
    before a deployment wires its planners are planned once it does."""
    if not planners:
        return 0
    pending = OutboxEvent.filter(planned_at=None).order_by("id").limit(limit)
    if not await pending.exists():  # the usual answer, without a transaction
        return 0
    if not connections.get("default").capabilities.support_for_update:
        return await _plan_sqlite(planners, await pending)
    async with atomic() as connection:
        got = await connection.execute_query_dict(
            "SELECT pg_try_advisory_xact_lock($1) AS got", [_PLANNING_LOCK]
        )
        if not got[0]["got"]:  # another worker is planning; this one delivers meanwhile
            return 0
        planned = 0
        for row in await pending.select_for_update(skip_locked=True):
            try:
                async with atomic():  # a savepoint: a failing planner undoes only its row
                    await _plan(planners, row)
                    await OutboxEvent.filter(id=row.id).update(planned_at=clock.now())
            except Exception:
                log.exception("planning outbox row %s (%s) failed; it stays unplanned", row.id, row.kind)
                continue
            planned += 1
        return planned


async def _plan_sqlite(planners: Sequence[Planner], rows: list[OutboxEvent]) -> int:
    """SQLite (one process): rows read outside any transaction, then planned in one transaction for
    the batch (one commit, not one per row), each row in a savepoint so a failing planner undoes only
    its row. The transaction *starts* with a write (marking the first row planned), so it never
    upgrades a read lock, which SQLite can refuse at once ("database is locked") while another
    connection writes; a first write waits its turn instead."""
    planned = 0
    async with atomic():
        for row in rows:
            try:
                async with atomic():
                    unplanned = OutboxEvent.filter(id=row.id, planned_at=None)
                    if not await unplanned.update(planned_at=clock.now()):
                        continue  # planned meanwhile
                    await _plan(planners, row)
            except Exception:
                log.exception("planning outbox row %s (%s) failed; it stays unplanned", row.id, row.kind)
                continue
            planned += 1
    return planned


async def _plan(planners: Sequence[Planner], row: OutboxEvent) -> None:
    deliveries = [delivery for planner in planners for delivery in await planner(row)]
    if deliveries:
        await enqueue(*deliveries)
