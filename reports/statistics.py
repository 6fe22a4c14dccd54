"""Case statistics for managers: per department, category and period, read from the case event log.

A period is [from, to) in whole days of the city's timezone (the working calendar's). Every figure but
"overdue now" counts what happened inside the period; a rate's denominator is drawn from the same
events as its numerator, so no rate can exceed 100 % by counting backlog.

    figure                 definition (counts are distinct cases unless said otherwise)
    ---------------------  -------------------------------------------------------------------------
    received               cases routed or re-routed to the department (`route`, `reroute` events;
                           the event's department is the receiving one)
    accepted               cases the department accepted (`accept`)
    returned               cases the department returned to the dispatchers (`return`, 退单)
    resolved               cases the department resolved (`resolve`)
    closed                 cases closed by the resident or after the quiet period (`confirm`,
                           `auto_close`)
    reopened               cases a resident disputed (`dispute`, back as rework)
    responses              accept and return events that had a response due time (events)
    on-time acceptance     of those responses, the share made by their response due time
    rate
    resolutions            resolve events that had a resolution due time (events: a reworked case
                           resolved twice counts twice, each resolution had its own deadline)
    on-time resolution     of those resolutions, the share made by their resolution due time
    rate (按期结案率)
    handling hours,        per resolve event: hours from dispatch (the start of the resolution
    median and p90         clock; a dispute restarts it) to the resolution, interpolated linearly
                           between ranks (PostgreSQL's percentile_cont)
    ratings                residents' ratings first given in the period (one per reporter and case)
    satisfaction rate      of those ratings, the share of 4 or 5
    rating average         of those ratings, the mean of their 1 to 5 stars
    overdue now            cases in a working status (ROUTED, ACCEPTED, IN_PROGRESS, REOPENED)
                           whose active due time (response while ROUTED, resolution after) has
                           passed, at the time of asking, whatever the period

A rate is null when its denominator is 0. Departments and categories come from the events (the
department the case was with and the category it had when it happened: CaseEvent.category_id); ratings
and overdue cases count for the case's current department and category. The total row counts each case
once per figure however many departments it passed through; rows that are not per department count a
case in the row of its first such event of the period.

The counts and timeliness come from the per-day roll-ups written with the events (reports.rollups): a
period reads its days' rows, however long the history before it. The handling-time percentiles read the
period's resolve events from one covering index of case_events (bounded by the period too; see
docs/statistics.md for why not a histogram), and the ratings the period's ratings by their date.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from identity.models import User
from kernel import clock
from kernel.errors import invalid
from kernel.rawsql import fetch
from reports import access, rollups
from reports.casework import INPUT, WORKING_STATUSES
from reports.lifecycle import CASE_COUNTS, Action, Status
from reports.models import CaseEvent
from reports.store import working_calendar

MAX_DAYS = 366  # one query reads at most a year of events


class Dimension(enum.StrEnum):
    DEPARTMENT = "DEPARTMENT"
    CATEGORY = "CATEGORY"


@dataclass(frozen=True, slots=True)
class StatisticsQuery:
    start: date  # first day, inclusive
    end: date  # last day, exclusive
    department_id: int | None = None
    category_id: int | None = None
    group_by: frozenset[Dimension] = frozenset({Dimension.DEPARTMENT})


@dataclass(slots=True)
class Figures:
    """One row: the counts, and the rates and times derived from them."""

    department_id: int | None = None
    category_id: int | None = None
    total: bool = False
    received: int = 0
    accepted: int = 0
    returned: int = 0
    resolved: int = 0
    closed: int = 0
    reopened: int = 0
    responses: int = 0
    responses_on_time: int = 0
    resolutions: int = 0
    resolutions_on_time: int = 0
    ratings: int = 0
    ratings_satisfied: int = 0
    ratings_sum: int = 0  # of the ratings' stars, for their average
    overdue_now: int = 0
    handling_hours_median: float | None = None
    handling_hours_p90: float | None = None

    @property
    def on_time_acceptance_rate(self) -> float | None:
        return _share(self.responses_on_time, self.responses)

    @property
    def on_time_resolution_rate(self) -> float | None:
        return _share(self.resolutions_on_time, self.resolutions)

    @property
    def satisfaction_rate(self) -> float | None:
        return _share(self.ratings_satisfied, self.ratings)

    @property
    def rating_average(self) -> float | None:
        return _share(self.ratings_sum, self.ratings)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# The handling-time percentiles, in tenths: the SQL picks the two ranks around each (integer arithmetic,
# the same on both engines) and `_interpolate` draws the line between them.
PERCENTILES = {"handling_hours_median": 5, "handling_hours_p90": 9}


def _ranks(count: str, tenths: int) -> tuple[str, str]:
    return f"({count} - 1) * {tenths} / 10", f"({count} - 1) * {tenths} / 10 + 1"


def _interpolate(ranked: dict[int, float], count: int, tenths: int) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont), in hours."""
    low, remainder = divmod((count - 1) * tenths, 10)
    below = ranked[low]
    return (below + (ranked.get(low + 1, below) - below) * remainder / 10) / 3600.0


# The figures whose events may have a due time (on_time not null), and what those events count as.
TIMED = {"accepted": "responses", "returned": "responses", "resolved": "resolutions"}
FIGURE_OF_KIND = {kind.value: name for name, kinds in CASE_COUNTS for kind in kinds}
ADDITIVE = ("responses", "responses_on_time", "resolutions", "resolutions_on_time", "ratings",
            "ratings_satisfied", "ratings_sum", "overdue_now")  # fmt: skip


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The period's days, midnight to midnight in the city's timezone, as UTC instants."""
    if end <= start:
        raise invalid("The period must end after it starts.", *INPUT, "to")
    if (end - start).days > MAX_DAYS:
        raise invalid(f"At most {MAX_DAYS} days at a time.", *INPUT, "to")
    tz = working_calendar().tz
    return (
        datetime.combine(start, time(0), tz).astimezone(UTC),
        datetime.combine(end, time(0), tz).astimezone(UTC),
    )


async def case_statistics(user: User, query: StatisticsQuery) -> list[Figures]:
    """The rows asked for (sorted by department and category ids), then the total row."""
    department_id = access.statistics_department(user, query.department_id)
    since, until = period_bounds(query.start, query.end)
    sql = _Sql(CaseEvent._meta.db, query.group_by, department_id, query.category_id)
    table = _Table(sql)
    # The four statements are independent: on PostgreSQL each takes its own pooled connection, so
    # they run side by side (SQLite's one connection takes them in turn).
    counted, ratings, overdue, handling = await asyncio.gather(
        sql.case_counts(query.start, query.end),
        sql.ratings(since, until),
        sql.overdue(clock.now()),
        (sql.handling_percentiles if sql.postgres else sql.handling_ranks)(since, until),
    )
    in_total = table.add_counts(counted)
    table.add_ratings(ratings)
    for values in overdue:
        table.row(values).overdue_now = int(values[sql.width])

    ordered = table.ordered()
    total = Figures(total=True, department_id=department_id, category_id=query.category_id)
    for name in ADDITIVE:
        setattr(total, name, sum(getattr(r, name) for r in ordered))
    for name, count in in_total.items():
        setattr(total, name, count)
    _handling_percentiles(sql, handling, table.row, total)
    return [*ordered, total]


async def department_figures(start: date, end: date) -> list[Figures]:
    """Every department's event counts, timeliness and ratings in the days [start, end), by department
    id, with the managers' definitions: the public transparency figures (reports.transparency). No access
    check (nothing in them names anyone), no overdue count and no handling times (not published)."""
    since, until = period_bounds(start, end)
    sql = _Sql(CaseEvent._meta.db, frozenset({Dimension.DEPARTMENT}), None, None)
    table = _Table(sql)
    counted, ratings = await asyncio.gather(sql.case_counts(start, end), sql.ratings(since, until))
    table.add_counts(counted)
    table.add_ratings(ratings)
    return [row for row in table.ordered() if row.department_id is not None]


class _Table:
    """The rows of one answer, keyed by their group, filled from the statements' results."""

    def __init__(self, sql: _Sql) -> None:
        self.sql = sql
        self.rows: dict[tuple[int | None, int | None], Figures] = {}

    def row(self, values: Sequence[Any]) -> Figures:
        found = self.sql.key(values)
        if found not in self.rows:
            self.rows[found] = Figures(department_id=found[0], category_id=found[1])
        return self.rows[found]

    def ordered(self) -> list[Figures]:
        return [self.rows[key] for key in sorted(self.rows, key=lambda k: (k[0] or 0, k[1] or 0))]

    def add_counts(self, counted: list[Sequence[Any]]) -> dict[str, int]:
        """Adds `_Sql.case_counts` to the rows; returns each figure's count for the total row."""
        in_total = dict.fromkeys((name for name, _ in CASE_COUNTS), 0)
        for values in counted:
            kind, in_row, counted_in_total, with_due_time, on_time = values[self.sql.width :]
            figure = FIGURE_OF_KIND[kind]
            found = self.row(values)
            # A case's first event of a figure in the period is of one kind only, so the kinds' counts
            # add up.
            setattr(found, figure, getattr(found, figure) + int(in_row))
            in_total[figure] += int(counted_in_total)
            if figure in TIMED:
                made = TIMED[figure]
                setattr(found, made, getattr(found, made) + int(with_due_time))
                setattr(found, f"{made}_on_time", getattr(found, f"{made}_on_time") + int(on_time or 0))
        return in_total

    def add_ratings(self, ratings: list[Sequence[Any]]) -> None:
        for values in ratings:
            count, satisfied, stars = values[self.sql.width :]
            rated = self.row(values)
            rated.ratings, rated.ratings_satisfied, rated.ratings_sum = (
                int(count),
                int(satisfied or 0),
                int(stars or 0),
            )


def _handling_percentiles(
    sql: _Sql, handling: list[Sequence[Any]], row: Callable[[Sequence[Any]], Figures], total: Figures
) -> None:
    """Each row's and the total's handling-time percentiles: PostgreSQL computed them, SQLite picked the
    few ranks they need (`_Sql.handling_percentiles`, `_Sql.handling_ranks`)."""
    if sql.postgres:
        for values in handling:
            *key, in_total, median, p90 = values
            # Without groups the one row and the total are the same; with no resolution, null.
            for found in [row(key), total] if not key else [total] if in_total else [row(key)]:
                found.handling_hours_median = None if median is None else median / 3600.0
                found.handling_hours_p90 = None if p90 is None else p90 / 3600.0
        return
    ranked: dict[tuple[int, ...], dict[int, float]] = {}
    counts: dict[tuple[int, ...], int] = {}
    totals: dict[int, float] = {}
    total_count = 0
    for values in handling:
        group = tuple(values[: sql.width])
        rank, count, total_rank, total_count, seconds = values[sql.width :]
        ranked.setdefault(group, {})[int(rank)] = float(seconds)
        counts[group] = int(count)
        totals[int(total_rank)] = float(seconds)
    for group, at in ranked.items():
        for name, tenths in PERCENTILES.items():
            setattr(row(group), name, _interpolate(at, counts[group], tenths))
    if total_count:
        for name, tenths in PERCENTILES.items():
            setattr(total, name, _interpolate(totals, int(total_count), tenths))


class _Sql:
    """The statements, written once for both engines. Events carry their category and timeliness
    (see CaseEvent), so the percentile statements read the covering index alone: no JSON, no join."""

    def __init__(
        self,
        conn: BaseDBAsyncClient,
        group_by: frozenset[Dimension],
        department_id: int | None,
        category_id: int | None,
    ) -> None:
        self.conn = conn
        self.postgres = conn.capabilities.dialect == "postgres"
        self.group_by = group_by
        self.department_id = department_id
        self.category_id = category_id
        self.width = len(group_by)
        # A case counts once per department in department rows or a department's figures, once in all
        # else (see CaseEvent.prior_at).
        per_department = Dimension.DEPARTMENT in group_by or department_id is not None
        self.row_prior = "r.prior_in_department_day" if per_department else "r.prior_day"
        self.total_prior = "r.prior_in_department_day" if department_id is not None else "r.prior_day"

    def key(self, values: Sequence[Any]) -> tuple[int | None, int | None]:
        found = iter(values[: self.width])
        department = next(found) if Dimension.DEPARTMENT in self.group_by else None
        category = next(found) if Dimension.CATEGORY in self.group_by else None
        return department, category

    def _columns(self, table: str) -> list[str]:
        chosen = {Dimension.DEPARTMENT: f"{table}.department_id", Dimension.CATEGORY: f"{table}.category_id"}
        return [chosen[d] for d in Dimension if d in self.group_by]

    def _events(
        self, kinds: Iterable[str], since: datetime, until: datetime
    ) -> tuple[list[str], str, list[Any]]:
        """Key columns, FROM ... WHERE over the period's events of these kinds, and its parameters."""
        keys = self._columns("e")
        kinds = list(kinds)
        where = [f"e.kind IN ({', '.join(['{}'] * len(kinds))})", "e.created_at >= {}", "e.created_at < {}"]
        params: list[Any] = [*kinds, since, until]
        if self.department_id is not None:
            where.append("e.department_id = {}")
            params.append(self.department_id)
        if self.category_id is not None:
            where.append("e.category_id = {}")
            params.append(self.category_id)
        return keys, f"FROM case_events e WHERE {' AND '.join(where)}", params

    async def case_counts(self, start: date, end: date) -> list[Sequence[Any]]:
        """(keys..., event kind, distinct cases in the row, of those the ones new to the total, events
        with a due time, those made by it), from the roll-ups of the days [start, end) (reports.rollups).
        A case's first event of a figure in the period is the one whose prior's day is before the
        period. Grouped by the plain kind (the caller adds the kinds of a figure up)."""
        day = functools.partial(rollups.day_param, self.conn)
        keys = [f"NULLIF({column}, 0)" for column in self._columns("r")]
        where = ["r.day >= {} AND r.day < {}"]  # the table holds only the counted kinds
        params: list[Any] = [day(start), day(end)]
        for column, value in (("department_id", self.department_id), ("category_id", self.category_id)):
            if value is not None:
                where.append(f"r.{column} = {{}}")
                params.append(value)
        priors = (self.row_prior, self.total_prior)
        firsts = [f"SUM(CASE WHEN {p} < {{}} THEN r.events ELSE 0 END)" for p in priors]
        source = f"FROM case_day_figures r WHERE {' AND '.join(where)}"
        return await self._run([*keys, "r.kind"], [*firsts, "SUM(r.timed)", "SUM(r.on_time)"], source,
                               [day(start), day(start), *params])  # fmt: skip

    async def handling_percentiles(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        """PostgreSQL: (keys..., whether the total row, median seconds, p90 seconds) per row and total."""
        keys, source, params = self._events([Action.RESOLVE.value], since, until)
        fractions = [
            f"percentile_cont({t / 10}) WITHIN GROUP (ORDER BY e.handling_seconds)"
            for t in PERCENTILES.values()
        ]
        in_total = f"GROUPING({', '.join(keys)}) > 0" if keys else "TRUE"
        grouping = f" GROUP BY GROUPING SETS (({', '.join(keys)}), ())" if keys else ""
        measured = f"{source} AND e.handling_seconds IS NOT NULL"
        return await fetch(
            self.conn, f"SELECT {', '.join([*keys, in_total, *fractions])} {measured}{grouping}", params
        )

    async def handling_ranks(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        """(keys..., rank, count, rank in the total, total count, seconds) for the resolutions whose
        rank, in their row or in the total, is one a percentile needs: a few rows, sorted by the engine."""
        keys, source, params = self._events([Action.RESOLVE.value], since, until)
        within = f"PARTITION BY {', '.join(keys)} " if keys else ""
        ranked = ", ".join(
            [
                *(f"{key} AS k{i}" for i, key in enumerate(keys)),
                "e.handling_seconds AS seconds",
                f"ROW_NUMBER() OVER ({within}ORDER BY e.handling_seconds) - 1 AS rank_in_row",
                f"COUNT(*) OVER ({within.strip()}) AS row_count",
                "ROW_NUMBER() OVER (ORDER BY e.handling_seconds) - 1 AS rank_in_total",
                "COUNT(*) OVER () AS total_count",
            ]
        )
        wanted = " OR ".join(
            f"{rank} IN ({', '.join(_ranks(count, tenths))})"
            for rank, count in (("rank_in_row", "row_count"), ("rank_in_total", "total_count"))
            for tenths in PERCENTILES.values()
        )
        picked = [*(f"k{i}" for i in range(len(keys))), "rank_in_row", "row_count", "rank_in_total"]
        return await fetch(
            self.conn,
            f"SELECT {', '.join([*picked, 'total_count', 'seconds'])} FROM (SELECT {ranked} {source}"
            " AND e.handling_seconds IS NOT NULL) r WHERE " + wanted,
            params,
        )

    async def ratings(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        where, params = self._case_filters(["f.created_at >= {}", "f.created_at < {}"], [since, until])
        source = f"FROM case_feedback f JOIN cases c ON c.id = f.case_id WHERE {where}"
        counts = ["COUNT(*)", "SUM(CASE WHEN f.rating >= 4 THEN 1 ELSE 0 END)", "SUM(f.rating)"]
        return await self._run(self._columns("c"), counts, source, params)

    async def overdue(self, now: datetime) -> list[Sequence[Any]]:
        resolving = [s.value for s in WORKING_STATUSES if s is not Status.ROUTED]
        late = (
            "((c.status = {} AND c.response_due_at < {}) OR "
            f"(c.status IN ({', '.join(['{}'] * len(resolving))}) AND c.resolution_due_at < {{}}))"
        )
        where, params = self._case_filters([late], [Status.ROUTED.value, now, *resolving, now])
        source = f"FROM cases c WHERE {where}"
        return await self._run(self._columns("c"), ["COUNT(*)"], source, params)

    def _case_filters(self, where: list[str], params: list[Any]) -> tuple[str, list[Any]]:
        if self.department_id is not None:
            where, params = [*where, "c.department_id = {}"], [*params, self.department_id]
        if self.category_id is not None:
            where, params = [*where, "c.category_id = {}"], [*params, self.category_id]
        return " AND ".join(where), params

    async def _run(
        self, keys: list[str], values: list[str], source: str, params: list[Any]
    ) -> list[Sequence[Any]]:
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        return await fetch(self.conn, f"SELECT {', '.join([*keys, *values])} {source}{group}", params)
