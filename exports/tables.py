"""The tables an export writes: their columns and their rows, in batches.

Cases are read in keyset batches (`id > last` in id order, one statement per batch), so memory stays
flat however many cases match. Statistics and compliance tables are as small as their queries'
answers (a row per department and category, a row per chief, rule and period) and come in one batch.

Each table is opened for a reader: opening checks that they may read it (exports.access) and counts
the rows, so a job can report its progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise import connections

from exports import access
from exports.models import ExportKind
from identity.models import User
from identity.service import Principal
from kernel import clock
from kernel.errors import DomainError, invalid
from kernel.geo import BBox
from kernel.rawsql import as_datetime, fetch
from patrols.access import Viewer, check_office_reader, viewer_of
from patrols.compliance import check_range, compliance
from patrols.models import PatrolArea
from patrols.office import OfficeDimension, check_region, office_figures, parse_period
from reports.lifecycle import Status
from reports.models import Category, Department, Priority
from reports.queue import QueueFilter, Scope, case_filter, due_column
from reports.statistics import Dimension, StatisticsQuery, case_statistics

Row = Sequence[Any]


# Rows in batches of at most the size given; with `text`, times as ISO 8601 text (CSV, GeoJSON), else
# as datetimes (XLSX). Days are dates either way (their str() is ISO 8601).
Batches = Callable[[int, bool], AsyncGenerator[list[Row]]]


@dataclass(frozen=True, slots=True)
class Table:
    """A table checked for its reader; `count` reads (or computes) it, then `batches` yields it."""

    columns: tuple[str, ...]
    count: Callable[[], Awaitable[int]]
    batches: Batches
    point: tuple[int, int] | None = None  # the (latitude, longitude) columns, for GeoJSON


class _Computed:
    """A table computed whole by its query (statistics, compliance: small), once, when first counted."""

    def __init__(self, compute: Callable[[], Awaitable[list[Row]]]) -> None:
        self._compute = compute
        self._rows: list[Row] | None = None

    async def count(self) -> int:
        if self._rows is None:
            self._rows = await self._compute()
        return len(self._rows)

    async def batches(self, size: int, text: bool) -> AsyncGenerator[list[Row]]:
        rows = self._rows or []  # statistics have no times, compliance days only
        for start in range(0, len(rows), size):
            yield rows[start : start + size]


# --- parameters: checked once at the start, stored as JSON, read back by the job ----------------------


def _day(value: Any, *field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid("Give a date as YYYY-MM-DD.", *field) from exc


def _moment(value: Any, *field: str) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    if moment.tzinfo is None:
        raise invalid("Give the time with its UTC offset.", *field)
    return moment.astimezone(UTC)


def case_filter_of(parameters: dict[str, Any]) -> QueueFilter:
    box = parameters.get("bbox")
    return QueueFilter(
        statuses=[Status(s) for s in parameters["statuses"]] if parameters.get("statuses") else None,
        category_code=parameters.get("category_code"),
        priorities=[Priority[p] for p in parameters["priorities"]] if parameters.get("priorities") else None,
        overdue=parameters.get("overdue"),
        due_before=_moment(parameters.get("due_before"), "input", "cases", "dueBefore"),
        bbox=BBox(**box) if box else None,
        text=parameters.get("text"),
    )


# --- cases ------------------------------------------------------------------------------------------

CASE_COLUMNS = (
    "reference", "status", "priority", "category_code", "category_name_zh", "category_name_en",
    "department_code", "department_name", "assignee", "reporter_count", "summary", "latitude",
    "longitude", "created_at", "due_at", "overdue", "resolved_at", "closed_at",
)  # fmt: skip
# What a service account's key reads (exports.access): no assignee, no summary, the public location.
_PERSONAL = frozenset({"assignee", "summary"})
KEY_CASE_COLUMNS = tuple(c for c in CASE_COLUMNS if c not in _PERSONAL)

# Categories and departments are a few hundred rows, read once per export: a case names them by id
# (joined, they made every row carry five more strings, a third of what reading a row cost). The due
# time is picked by the status in SQL (reports.queue.due_column), and a key's export reads neither the
# assignee nor the summary nor the exact location.
_DUE = "CASE c.status {} END".format(
    " ".join(f"WHEN '{s.value}' THEN c.{due_column(s)}" for s in Status if due_column(s))
)
_PERSONAL_SELECT = f"""
SELECT c.id, c.reference, c.status, c.priority, c.category_id, c.department_id, u.display_name,
       c.reporter_count, c.summary, c.latitude, c.longitude, c.created_at, {_DUE}, c.resolved_at, c.closed_at
FROM cases c
LEFT JOIN users u ON u.id = c.assignee_id"""
_KEY_SELECT = f"""
SELECT c.id, c.reference, c.status, c.priority, c.category_id, c.department_id, c.reporter_count,
       c.public_latitude, c.public_longitude, c.created_at, {_DUE}, c.resolved_at, c.closed_at
FROM cases c"""

_PRIORITY_NAMES = {int(p): p.name for p in Priority}


def _when(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


def _iso(value: Any) -> str | None:
    """A stored UTC time as ISO 8601 text without parsing it: SQLite keeps `str(datetime)` (a space
    where ISO has a T), asyncpg gives aware UTC datetimes. Parsing and formatting a million rows' times
    again would cost a third of a CSV export."""
    if value is None:
        return None
    return value.replace(" ", "T", 1) if isinstance(value, str) else value.isoformat()


# (code, Chinese name, English name) by category id; (code, name) by department id, None for none.
_Names = tuple[dict[int, tuple[str, str, str]], dict[int | None, tuple[str | None, str | None]]]


async def _names() -> _Names:
    categories = {i: (code, zh, en) for i, code, zh, en in await Category.all().values_list(
        "id", "code", "name_zh", "name_en")}  # fmt: skip
    departments: dict[int | None, tuple[str | None, str | None]] = {None: (None, None)}
    departments.update(
        (i, (code, name)) for i, code, name in await Department.all().values_list("id", "code", "name")
    )
    return categories, departments


async def _case_table(scope: Scope | None, parameters: dict[str, Any], personal: bool) -> Table:
    """Cases in `scope` (None: every one); without `personal`, the key's columns (KEY_CASE_COLUMNS)."""
    conn = connections.get("default")
    now = clock.now()
    try:
        where, values = case_filter(conn, scope, case_filter_of(parameters), now)
    except DomainError as exc:  # the queue names its own argument; here the filter is in the input
        if exc.field and exc.field[0] == "filter":
            exc.field = ["input", "cases", *exc.field[1:]]
        raise
    created_from = _moment(parameters.get("created_from"), "input", "cases", "createdFrom")
    created_to = _moment(parameters.get("created_to"), "input", "cases", "createdTo")
    if created_from is not None:
        where, values = f"{where} AND c.created_at >= {{}}", [*values, created_from]
    if created_to is not None:
        where, values = f"{where} AND c.created_at < {{}}", [*values, created_to]

    async def count() -> int:
        ((total,),) = await fetch(conn, f"SELECT COUNT(*) FROM cases c WHERE {where}", values)
        return int(total)

    # SQLite's usual spellings of two UTC times compare as text in time order (kernel.rawsql.utc_seconds)
    now_text = now.astimezone(UTC).isoformat(" ")

    def is_overdue(due: Any) -> bool:
        if isinstance(due, str) and len(due) in (25, 32) and due.endswith("+00:00"):
            return due < now_text
        return due is not None and as_datetime(due) < now

    def rows(records: list[Row], when: Callable[[Any], Any], names: _Names) -> list[Row]:
        categories, departments = names
        if personal:
            return [
                (reference, status, _PRIORITY_NAMES[priority], *categories[category_id],
                 *departments[department_id], assignee, reporters, summary, lat, lon, when(created),
                 when(due), is_overdue(due), when(resolved), when(closed))
                for (_, reference, status, priority, category_id, department_id, assignee, reporters, summary,
                     lat, lon, created, due, resolved, closed) in records
            ]  # fmt: skip
        return [
            (reference, status, _PRIORITY_NAMES[priority], *categories[category_id],
             *departments[department_id], reporters, lat, lon, when(created), when(due), is_overdue(due),
             when(resolved), when(closed))
            for (_, reference, status, priority, category_id, department_id, reporters, lat, lon, created,
                 due, resolved, closed) in records
        ]  # fmt: skip

    def page(after: int, size: int) -> Awaitable[list[Row]]:
        select = _PERSONAL_SELECT if personal else _KEY_SELECT
        sql = f"{select} WHERE {where} AND c.id > {{}} ORDER BY c.id LIMIT {int(size)}"
        return fetch(conn, sql, [*values, after])

    async def batches(size: int, text: bool) -> AsyncGenerator[list[Row]]:
        when = _iso if text else _when
        names = await _names()
        # The next batch is read while the caller writes this one: the database and the file overlap.
        reading: asyncio.Future[list[Row]] = asyncio.ensure_future(page(0, size))
        try:
            while True:
                records = await reading
                if not records:
                    return
                full = len(records) == size
                if full:
                    reading = asyncio.ensure_future(page(records[-1][0], size))
                yield rows(records, when, names)
                if not full:
                    return
        finally:
            reading.cancel()  # stopped early (cancelled): the read ahead is not wanted

    columns = CASE_COLUMNS if personal else KEY_CASE_COLUMNS
    return Table(columns, count, batches, point=(columns.index("latitude"), columns.index("longitude")))


# --- statistics -------------------------------------------------------------------------------------

_FIGURES = (
    "received", "accepted", "returned", "resolved", "closed", "reopened", "responses",
    "on_time_acceptance_rate", "resolutions", "on_time_resolution_rate", "handling_hours_median",
    "handling_hours_p90", "ratings", "satisfaction_rate", "overdue_now",
)  # fmt: skip
STATISTICS_COLUMNS = ("department_code", "department_name", "category_code", "category_name_zh",
                      "category_name_en", *_FIGURES)  # fmt: skip


def statistics_query(parameters: dict[str, Any]) -> StatisticsQuery:
    group_by = frozenset(Dimension(d) for d in parameters.get("group_by") or [Dimension.DEPARTMENT])
    return StatisticsQuery(
        start=_day(parameters.get("from"), "input", "period", "from"),
        end=_day(parameters.get("to"), "input", "period", "to"),
        department_id=parameters.get("department_id"),
        category_id=parameters.get("category_id"),
        group_by=group_by,
    )


async def _statistics_table(user: User, parameters: dict[str, Any]) -> Table:
    query = statistics_query(parameters)
    access.statistics_department(user, query.department_id)

    async def compute() -> list[Row]:
        figures = await case_statistics(user, query)
        departments = {d.id: d for d in await Department.all()}
        categories = {c.id: c for c in await Category.all()}
        rows: list[Row] = []
        for f in figures:
            department = departments.get(f.department_id) if f.department_id is not None else None
            category = categories.get(f.category_id) if f.category_id is not None else None
            label = "TOTAL" if f.total and department is None else None
            rows.append((
                department.code if department else label, department.name if department else None,
                category.code if category else None, category.name_zh if category else None,
                category.name_en if category else None, *(getattr(f, name) for name in _FIGURES),
            ))  # fmt: skip
        return rows

    table = _Computed(compute)
    return Table(STATISTICS_COLUMNS, table.count, table.batches)


# --- patrol compliance --------------------------------------------------------------------------------

COMPLIANCE_COLUMNS = ("chief", "rule", "period", "first_day", "last_day", "area_code", "area_name",
                      "required", "done", "missing", "met", "note")  # fmt: skip


async def _compliance_table(user: User, parameters: dict[str, Any], viewer: Viewer) -> Table:
    access.check_compliance_reader(user, viewer)
    first = _day(parameters.get("from"), "input", "period", "from")
    # The period ends the day before `to`, as the statistics' does; the compliance query counts last days.
    last = _day(parameters.get("to"), "input", "period", "to") - timedelta(days=1)
    check_range(first, last)

    async def compute() -> list[Row]:
        verdicts = await compliance(
            viewer, first, last, chief_id=parameters.get("chief_id"), area_id=parameters.get("area_id"),
            region=parameters.get("region"),
        )  # fmt: skip
        chief_ids = {v.chief_id for v in verdicts}
        chiefs = dict(await User.filter(id__in=chief_ids).values_list("id", "display_name"))
        areas = {
            a.id: a
            for a in await PatrolArea.filter(id__in={a.area_id for v in verdicts for a in v.assignments})
        }
        rows: list[Row] = []
        for v in verdicts:
            own_areas = sorted({a.area_id for a in v.assignments})
            for period in v.verdict.periods:
                shown = [
                    areas[i] for i in ([int(period.area_id)] if period.area_id else own_areas) if i in areas
                ]
                rows.append((
                    chiefs.get(v.chief_id, ""), v.rule.code, period.label, period.first_day, period.last_day,
                    ", ".join(a.code for a in shown), ", ".join(a.name for a in shown), period.required,
                    min(period.done, period.required), period.missing, period.missing == 0, period.note,
                ))  # fmt: skip
        return rows

    table = _Computed(compute)
    return Table(COMPLIANCE_COLUMNS, table.count, table.batches)


# --- the chief office's figures ----------------------------------------------------------------------

_OFFICE_FIGURES = (
    "areas", "patrols_required", "patrols_done", "patrol_rate", "problems_found", "handed_off",
    "handled_on_spot", "solved", "closed", "closed_on_time", "closure_rate", "on_time_closure_rate",
    "complaints",
)  # fmt: skip
OFFICE_COLUMNS = ("period", "region", "level", "area_code", "area_name", *_OFFICE_FIGURES,
                  "assessment_score", "assessment_method", "assessment_items")  # fmt: skip


async def _office_table(principal: Principal, parameters: dict[str, Any], viewer: Viewer) -> Table:
    """One row per group of the office figures and a last TOTAL row, each with its assessment score and
    the explanation of every item."""
    check_office_reader(principal, viewer)
    label = str(parameters.get("office_period") or "")
    parse_period(label, "input", "officePeriod")
    region = check_region(parameters.get("region"), "input", "region")
    group_by = frozenset(OfficeDimension(d) for d in parameters.get("office_group_by") or ["AREA"])
    digits = parameters.get("region_digits")

    async def compute() -> list[Row]:
        report = await office_figures(viewer, label, region=region, group_by=group_by, region_digits=digits)
        areas = {
            a.id: a for a in await PatrolArea.filter(id__in={r.area_id for r in report.rows if r.area_id})
        }
        rows: list[Row] = []
        for r in (*report.rows, report.total):
            area = areas.get(r.area_id) if r.area_id else None
            total = r is report.total
            items = "; ".join(f"{s.item.metric.value}: {s.explanation}" for s in r.assessment.items)
            rows.append((
                report.window.label, "TOTAL" if total else r.region, r.level.value if r.level else None,
                area.code if area else None, area.name if area else None,
                *(getattr(r.figures, name) for name in _OFFICE_FIGURES),
                r.assessment.score, r.assessment.method_code, items,
            ))  # fmt: skip
        return rows

    table = _Computed(compute)
    return Table(OFFICE_COLUMNS, table.count, table.batches)


async def open_table(principal: Principal, kind: ExportKind, parameters: dict[str, Any]) -> Table:
    """The table `principal` asked for, checked against what they may read (a DomainError if not)."""
    access.require_reader(principal)
    if access.is_key(principal):
        scope = await access.key_case_scope(principal, kind, parameters.get("department_id"))
        return await _case_table(scope, parameters, personal=False)
    user = principal.user
    if kind is ExportKind.CASES:
        scope = await access.case_scope(user, parameters.get("department_id"))
        return await _case_table(scope, parameters, personal=True)
    if kind is ExportKind.STATISTICS:
        return await _statistics_table(user, parameters)
    if kind is ExportKind.OFFICE_FIGURES:
        return await _office_table(principal, parameters, await viewer_of(principal))
    return await _compliance_table(user, parameters, await viewer_of(principal))
