"""Retention of chiefs' tracks (`patrol_track`): a finished patrol's points are deleted once its finish
is past the period. The patrol row keeps its metrics (duration, distance, coverage, flags), which
compliance and the statistics read, and `track_removed_at` records when the points went; its track then
reads as empty. Each batch of patrols is one transaction: the points' DELETE and the conditional mark."""

from __future__ import annotations

from datetime import datetime

from kernel.database import atomic
from kernel.rawsql import qmarks
from kernel.retention import Batches, DataKind, RetentionPolicy, Stopwatch
from patrols.models import Patrol, PatrolStatus

# Patrols per batch: a patrol may hold thousands of points (a three-hour patrol at 1 Hz is 10,800).
PATROLS_PER_BATCH = 20


async def remove_tracks(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.PATROL_TRACK, now)
    conn = Patrol._meta.db
    after = 0

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        _, rows = await conn.execute_query(
            qmarks(
                conn,
                "SELECT id FROM patrols WHERE id > ? AND status = ? AND finished_at < ? "
                "AND track_removed_at IS NULL ORDER BY id LIMIT ?",
            ),
            [after, PatrolStatus.FINISHED.value, cutoff, min(policy.batch_size, PATROLS_PER_BATCH)],
        )
        ids = [row[0] for row in rows]
        if not ids:
            return None
        after = ids[-1]
        marks = ", ".join("?" * len(ids))
        watch = Stopwatch()
        async with atomic() as tx:
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    f"UPDATE patrols SET track_removed_at = ? WHERE id IN ({marks}) "
                    "AND track_removed_at IS NULL",
                ),
                [now, *ids],
            )
            if changed:  # the points of patrols this transaction marked (another process may have)
                await tx.execute_query(
                    qmarks(
                        tx,
                        f"DELETE FROM track_points WHERE patrol_id IN ({marks}) AND patrol_id IN "
                        f"(SELECT id FROM patrols WHERE id IN ({marks}) AND track_removed_at = ?)",
                    ),
                    [*ids, *ids, now],
                )
        return changed, watch.seconds()

    await batches.run(DataKind.PATROL_TRACK.value, batch)
