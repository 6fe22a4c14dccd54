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
    overdue now            cases in a working status (ROUTED, ACCEPTED, IN_PROGRESS, REOPENED)
                           whose active due time (response while ROUTED, resolution after) has
                           passed, at the time of asking, whatever the period

A rate is null when its denominator is 0. Departments come from the events (the one the case was with
when it happened); ratings and overdue cases count for the case's current department. Categories are
the case's current category. The total row counts each case once per figure however many departments
it passed through.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from identity.models import Role, User
from kernel import clock
from kernel.errors import forbidden, invalid
from kernel.rawsql import fetch
from reports.casework import INPUT, WORKING_STATUSES
from reports.lifecycle import Action, Status
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
    overdue_now: int = 0
    handling_hours: list[float] = field(default_factory=list, repr=False)

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
    def handling_hours_median(self) -> float | None:
        return percentile(self.handling_hours, 0.5)

    @property
    def handling_hours_p90(self) -> float | None:
        return percentile(self.handling_hours, 0.9)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# The distinct-case counts (Figures' field names) and the event kinds each one counts.
CASE_COUNTS: tuple[tuple[str, tuple[Action, ...]], ...] = (
    ("received", (Action.ROUTE, Action.REROUTE)),
    ("accepted", (Action.ACCEPT,)),
    ("returned", (Action.RETURN,)),
    ("resolved", (Action.RESOLVE,)),
    ("closed", (Action.CONFIRM, Action.AUTO_CLOSE)),
    ("reopened", (Action.DISPUTE,)),
)
RESPONSES = (Action.ACCEPT, Action.RETURN)
COUNTED_KINDS = tuple(dict.fromkeys(kind for _, kinds in CASE_COUNTS for kind in kinds))
ADDITIVE = ("responses", "responses_on_time", "resolutions", "resolutions_on_time", "ratings",
            "ratings_satisfied", "overdue_now")  # fmt: skip


def scope_of(user: User, department_id: int | None) -> int | None:
    """The department the caller may ask about (None: every one)."""
    if user.role in (Role.DISPATCHER, Role.ADMIN):
        return department_id
    if user.role is Role.STAFF and user.department_id is not None:
        if department_id not in (None, user.department_id):
            raise forbidden("Staff see the statistics of their own department only.")
        return user.department_id
    raise forbidden("Statistics are for staff, dispatchers and administrators.")


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
    department_id = scope_of(user, query.department_id)
    since, until = period_bounds(query.start, query.end)
    sql = _Sql(CaseEvent._meta.db, query.group_by, department_id, query.category_id)
    rows: dict[tuple[int | None, int | None], Figures] = {}

    def row(key: Sequence[Any]) -> Figures:
        found = sql.key(key)
        if found not in rows:
            rows[found] = Figures(department_id=found[0], category_id=found[1])
        return rows[found]

    for values in await sql.case_counts(since, until, grouped=True):
        setattr(row(values), values[sql.width], int(values[-1]))
    for values in await sql.responses(since, until):
        answered = row(values)
        answered.responses, answered.responses_on_time = int(values[sql.width]), int(values[-1] or 0)
    for values in await sql.resolutions(since, until):
        resolved = row(values)
        due, on_time, hours = values[sql.width :]
        if due is not None:
            resolved.resolutions += 1
            resolved.resolutions_on_time += bool(on_time)
        if hours is not None:
            resolved.handling_hours.append(float(hours))
    for values in await sql.ratings(since, until):
        rated = row(values)
        rated.ratings, rated.ratings_satisfied = int(values[sql.width]), int(values[-1] or 0)
    for values in await sql.overdue(clock.now()):
        row(values).overdue_now = int(values[sql.width])

    ordered = [rows[key] for key in sorted(rows, key=lambda k: (k[0] or 0, k[1] or 0))]
    total = Figures(total=True, department_id=department_id, category_id=query.category_id)
    for name in ADDITIVE:
        setattr(total, name, sum(getattr(r, name) for r in ordered))
    total.handling_hours = [hours for r in ordered for hours in r.handling_hours]
    if sql.groups_may_share_cases:
        for figure, count in await sql.case_counts(since, until, grouped=False):
            setattr(total, figure, int(count))
    else:
        for name, _ in CASE_COUNTS:
            setattr(total, name, sum(getattr(r, name) for r in ordered))
    return [*ordered, total]


class _Sql:
    """The statements, written once for both engines: only JSON access and time arithmetic differ."""

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
        # A case re-routed between departments appears in several department rows, so the total's
        # distinct counts need their own pass; a case has one category, so category rows add up.
        self.groups_may_share_cases = Dimension.DEPARTMENT in group_by and department_id is None

    def key(self, values: Sequence[Any]) -> tuple[int | None, int | None]:
        found = iter(values[: self.width])
        department = next(found) if Dimension.DEPARTMENT in self.group_by else None
        category = next(found) if Dimension.CATEGORY in self.group_by else None
        return department, category

    def _json_time(self, name: str) -> str:
        if self.postgres:
            return f"(e.data->>'{name}')::timestamptz"
        return f"julianday(json_extract(e.data, '$.{name}'))"

    def _on_time(self, name: str) -> str:
        created = "e.created_at" if self.postgres else "julianday(e.created_at)"
        return f"{created} <= {self._json_time(name)}"

    def _hours(self, since: str) -> str:
        if self.postgres:
            return f"EXTRACT(EPOCH FROM e.created_at - {self._json_time(since)}) / 3600.0"
        return f"(julianday(e.created_at) - {self._json_time(since)}) * 24.0"

    def _columns(self, department: str) -> list[str]:
        chosen = {Dimension.DEPARTMENT: department, Dimension.CATEGORY: "c.category_id"}
        return [chosen[d] for d in Dimension if d in self.group_by]

    def _events(
        self, kinds: Iterable[str], since: datetime, until: datetime, grouped: bool
    ) -> tuple[list[str], str, list[Any]]:
        """Key columns, FROM ... WHERE over the period's events of these kinds, and its parameters."""
        keys = self._columns("e.department_id") if grouped else []
        kinds = list(kinds)
        join = "JOIN cases c ON c.id = e.case_id" if "c.category_id" in keys or self.category_id else ""
        where = [f"e.kind IN ({', '.join(['{}'] * len(kinds))})", "e.created_at >= {}", "e.created_at < {}"]
        params: list[Any] = [*kinds, since, until]
        if self.department_id is not None:
            where.append("e.department_id = {}")
            params.append(self.department_id)
        if self.category_id is not None:
            where.append("c.category_id = {}")
            params.append(self.category_id)
        return keys, f"FROM case_events e {join} WHERE {' AND '.join(where)}", params

    async def case_counts(self, since: datetime, until: datetime, grouped: bool) -> list[Sequence[Any]]:
        """(keys..., figure name, distinct cases): one DISTINCT pass instead of one per figure."""
        keys, source, params = self._events(COUNTED_KINDS, since, until, grouped)
        figure = " ".join(f"WHEN e.kind IN ({_listed(kinds)}) THEN '{name}'" for name, kinds in CASE_COUNTS)
        named = [f"{key} AS k{i}" for i, key in enumerate(keys)]
        inner = f"SELECT DISTINCT {', '.join([*named, f'CASE {figure} END AS figure', 'e.case_id'])}"
        outer = [f"k{i}" for i in range(len(keys))] + ["figure"]
        grouping = ", ".join(outer)
        return await fetch(
            self.conn, f"SELECT {grouping}, COUNT(*) FROM ({inner} {source}) d GROUP BY {grouping}", params
        )

    async def responses(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        """(keys..., responses with a due time, those made by it)."""
        keys, source, params = self._events([a.value for a in RESPONSES], since, until, grouped=True)
        counts = [
            f"COUNT({self._json_time('due')})",
            f"SUM(CASE WHEN {self._on_time('due')} THEN 1 ELSE 0 END)",
        ]
        return await self._run(keys, counts, source, params)

    async def resolutions(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        """(keys..., due time, made by it, handling hours) per resolution: the percentiles need each."""
        keys, source, params = self._events([Action.RESOLVE.value], since, until, grouped=True)
        values = [self._json_time("due"), self._on_time("due"), self._hours("dispatched")]
        return await fetch(self.conn, f"SELECT {', '.join([*keys, *values])} {source}", params)

    async def ratings(self, since: datetime, until: datetime) -> list[Sequence[Any]]:
        where, params = self._case_filters(["f.created_at >= {}", "f.created_at < {}"], [since, until])
        source = f"FROM case_feedback f JOIN cases c ON c.id = f.case_id WHERE {where}"
        counts = ["COUNT(*)", "SUM(CASE WHEN f.rating >= 4 THEN 1 ELSE 0 END)"]
        return await self._run(self._columns("c.department_id"), counts, source, params)

    async def overdue(self, now: datetime) -> list[Sequence[Any]]:
        resolving = [s.value for s in WORKING_STATUSES if s is not Status.ROUTED]
        late = (
            "((c.status = {} AND c.response_due_at < {}) OR "
            f"(c.status IN ({', '.join(['{}'] * len(resolving))}) AND c.resolution_due_at < {{}}))"
        )
        where, params = self._case_filters([late], [Status.ROUTED.value, now, *resolving, now])
        source = f"FROM cases c WHERE {where}"
        return await self._run(self._columns("c.department_id"), ["COUNT(*)"], source, params)

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


def _listed(kinds: Iterable[Action]) -> str:
    return ", ".join(f"'{kind.value}'" for kind in kinds)
