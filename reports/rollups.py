"""The statistics' per-day roll-ups of the case events they count (CaseDayFigures), so that a period's
figures read as many rows as it has days, whatever the length of the history before it.

One row per local day of the city, event kind, department, category and the local days of the event's
two priors (when its case last had an event of the same figure, anywhere and in this department:
CaseEvent.prior_at). The priors' days make the distinct-case counts exact for any period of whole days:
an event is its case's first of a figure in the period exactly when its prior's day is before the
period's first day, which a row tells without its events. Each row holds the events' count, how many
had a due time and how many were made by it.

`add` is called by `reports.casework.append`, the one function that writes case events, in the
transaction that writes them; `rebuild` recomputes every row from the log (after the migration that
added the table, or after the city's timezone changed: the days are the city's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from kernel.database import atomic
from kernel.rawsql import as_datetime, fetch, qmarks
from reports.lifecycle import SAME_FIGURE
from reports.models import CaseDayFigures, CaseEvent
from reports.store import working_calendar

NO_PRIOR = date(1, 1, 1)  # before every period: an event without a prior is always its case's first
COUNTED = frozenset(kind.value for kind in SAME_FIGURE)
KEY = ("day", "kind", "department_id", "category_id", "prior_day", "prior_in_department_day")
COUNTS = ("events", "timed", "on_time")
READ_BATCH = 20_000  # events read per statement by `rebuild`
WRITE_BATCH = 2_000  # roll-up rows per INSERT: 18,000 parameters, under both engines' limits

Key = tuple[date, str, int, int, date, date]


def _day(moment: datetime | None, tz: tzinfo) -> date:
    return NO_PRIOR if moment is None else moment.astimezone(tz).date()


def _key(
    kind: str,
    created_at: datetime,
    department_id: int | None,
    category_id: int | None,
    prior_at: datetime | None,
    prior_in_department_at: datetime | None,
    tz: tzinfo,
) -> Key:
    return (
        _day(created_at, tz),
        kind,
        department_id or 0,
        category_id or 0,
        _day(prior_at, tz),
        _day(prior_in_department_at, tz),
    )


class _Sums:
    """Roll-up rows being added up: per key, (events, timed, on time)."""

    def __init__(self) -> None:
        self.rows: dict[Key, Counter[str]] = {}

    def add(self, key: Key, on_time: bool | None) -> None:
        row = self.rows.setdefault(key, Counter())
        row["events"] += 1
        if on_time is not None:
            row["timed"] += 1
            row["on_time"] += int(bool(on_time))

    def values(self) -> list[tuple[Any, ...]]:
        # In key order: two transactions that both touch several rows lock them in the same order.
        return [(*key, *(row[name] for name in COUNTS)) for key, row in sorted(self.rows.items())]


async def add(events: Iterable[CaseEvent]) -> None:
    """Count `events` (those of a counted kind) into their days' rows, in the caller's transaction."""
    tz = working_calendar().tz
    sums = _Sums()
    for e in events:
        if e.kind in COUNTED:
            key = _key(
                e.kind, e.created_at, e.department_id, e.category_id, e.prior_at, e.prior_in_department_at, tz
            )
            sums.add(key, e.on_time)
    if sums.rows:
        # Added to the stored counts by the database, not read and written back: concurrent
        # transitions of other cases on the same day all count.
        added = ", ".join(f"{name} = case_day_figures.{name} + excluded.{name}" for name in COUNTS)
        await _insert(
            CaseDayFigures._meta.db, sums.values(), f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {added}"
        )


async def rebuild() -> int:
    """Recompute every roll-up row from the case event log, in one transaction; returns the events read.
    Run it with the API stopped: an event written meanwhile could be counted twice or not at all."""
    tz = working_calendar().tz
    sums = _Sums()
    read = 0
    async with atomic():
        conn = CaseDayFigures._meta.db
        await CaseDayFigures.all().delete()
        kinds = sorted(COUNTED)
        last = 0
        while True:
            rows = await fetch(
                conn,
                "SELECT id, kind, created_at, department_id, category_id, on_time, prior_at,"
                f" prior_in_department_at FROM case_events WHERE kind IN ({', '.join(['{}'] * len(kinds))})"
                " AND id > {} ORDER BY id LIMIT {}",
                [*kinds, last, READ_BATCH],
            )
            for _, kind, at, department, category, on_time, prior, prior_here in rows:
                key = _key(kind, as_datetime(at), department, category, _maybe(prior), _maybe(prior_here), tz)
                sums.add(key, None if on_time is None else bool(on_time))
            read += len(rows)
            if len(rows) < READ_BATCH:
                break
            last = rows[-1][0]
        values = sums.values()
        for start in range(0, len(values), WRITE_BATCH):
            await _insert(conn, values[start : start + WRITE_BATCH], "")
    return read


async def build_if_missing() -> int | None:
    """Build the roll-ups when none exist while the log holds counted events: the first start after
    upgrading past migration 0029, which made the table empty. Returns the events read, or None when
    there was nothing to build. Processes starting together build once (PostgreSQL: a lock; SQLite: one
    writer), and each looks again after waiting."""
    async with atomic() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query("SELECT pg_advisory_xact_lock(hashtext('envcase.statistics_rollups'))")
        if await CaseDayFigures.exists() or not await CaseEvent.filter(kind__in=sorted(COUNTED)).exists():
            return None
        return await rebuild()


def _maybe(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


async def _insert(conn: BaseDBAsyncClient, values: Sequence[tuple[Any, ...]], conflict: str) -> None:
    postgres = conn.capabilities.dialect == "postgres"
    width = len(KEY) + len(COUNTS)
    one = f"({', '.join(['?'] * width)})"
    params = [_param(value, postgres) for row in values for value in row]
    sql = (
        f"INSERT INTO case_day_figures ({', '.join((*KEY, *COUNTS))}) VALUES {', '.join([one] * len(values))}"
    )
    await conn.execute_query(qmarks(conn, sql + conflict), params)


def _param(value: Any, postgres: bool) -> Any:
    """Dates as the column stores them: asyncpg takes a date, SQLite's column holds ISO text."""
    return value.isoformat() if isinstance(value, date) and not postgres else value


def day_param(conn: BaseDBAsyncClient, day: date) -> Any:
    """A day as a statement's parameter compared with the table's days (reports.statistics)."""
    return _param(day, conn.capabilities.dialect == "postgres")
