"""A department's queue: the cases its staff work, filtered, ordered and paged by keyset.

A page is one SQL statement whatever its size. Each status is its own branch (`UNION ALL`), read in
index order from `(department_id, status, <sort column>, id)` and cut at the page size, so a page costs
the same at 10,000 and at 1,000,000 cases: no planner has to sort a whole department's open cases.
The branches are merged and cut again, and only then joined to what the page shows (category,
department, assignee, the first photo), so the joins run for the page's rows only.

Orders (the cursor is the order key plus the id, so a page stays put while cases arrive):
- DUE: the active due time (response due while ROUTED, resolution due while worked), earliest first;
  cases without one come last, oldest first.
- PRIORITY: highest first, newest first within a priority.
- CREATED: newest first. Ids are given in creation order, so the id is the creation order.

Counts per status (for tabs) are one GROUP BY over the same filters except the statuses.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from identity.models import Role, User
from kernel import clock
from kernel.database import atomic
from kernel.errors import DomainError, conflict, forbidden, invalid
from kernel.geo import BBox
from kernel.rawsql import as_datetime, fetch
from reports import access, casework
from reports.lifecycle import Action, Status
from reports.models import Case, Priority
from reports.service import check_bbox

MAX_BULK_ACCEPT = 50
MAX_TEXT_QUERY = 100
# What a queue shows when the caller names no statuses.
DEPARTMENT_DEFAULT = casework.WORKING_STATUSES
TRIAGE_DEFAULT = (Status.TRIAGE, Status.RETURNED)


class QueueOrder(enum.StrEnum):
    DUE = "DUE"
    PRIORITY = "PRIORITY"
    CREATED = "CREATED"


def due_column(status: Status) -> str | None:
    """The column holding a case's active due time in this status (as `casework.active_due`)."""
    if status is Status.ROUTED:
        return "response_due_at"
    if status in casework.WORKING_STATUSES:
        return "resolution_due_at"
    return None


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose queue: a department, or the dispatchers' triage queue (None)."""

    department_id: int | None


@dataclass(frozen=True)
class QueueFilter:
    statuses: Sequence[Status] | None = None
    category_code: str | None = None
    priorities: Sequence[Priority] | None = None
    overdue: bool | None = None  # True: active due time passed; False: not passed (or none)
    due_before: datetime | None = None
    bbox: BBox | None = None
    text: str | None = None  # in the summary or the reference, case-insensitive


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One case as the queue page shows it."""

    id: int
    reference: str
    status: Status
    version: int
    priority: Priority
    reporter_count: int
    category_id: int
    category_code: str
    category_name_zh: str
    category_name_en: str
    department_id: int | None
    department_code: str | None
    department_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    thumb_sha256: str | None  # the first photo of the first report with photos
    due_at: datetime | None
    overdue: bool
    created_at: datetime
    key: tuple[Any, ...]  # the order key, for the cursor


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: list[QueueRow]
    has_next: bool


# --- who sees which queue -------------------------------------------------------------------------


async def queue_scope(user: User, department_id: int | None) -> Scope:
    """The queue `user` may read when asking for `department_id`'s (see `reports.access.queue_department`)."""
    return Scope(await access.queue_department(user, department_id))


def default_statuses(scope: Scope) -> Sequence[Status]:
    return DEPARTMENT_DEFAULT if scope.department_id is not None else TRIAGE_DEFAULT


# --- building the SQL -----------------------------------------------------------------------------


class _Sql:
    """Parameters by name while the SQL is assembled: a condition may appear in several branches."""

    MARK = re.compile(r"§(\d+)§")

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"
        self.values: list[Any] = []

    def param(self, value: Any) -> str:
        self.values.append(value)
        return f"§{len(self.values) - 1}§"

    def positional(self, text: str) -> tuple[str, list[Any]]:
        """The text with `{}` marks (see kernel.rawsql.fetch) and the values in the order they appear."""
        ordered: list[Any] = []

        def mark(match: re.Match[str]) -> str:
            ordered.append(self.values[int(match.group(1))])
            return "{}"

        return self.MARK.sub(mark, text), ordered


def _check_filter(given: QueueFilter, scope: Scope) -> QueueFilter:
    text = (given.text or "").strip()
    if len(text) > MAX_TEXT_QUERY:
        raise invalid(f"At most {MAX_TEXT_QUERY} characters.", "filter", "text")
    if given.bbox is not None:
        try:
            check_bbox(given.bbox)
        except DomainError as exc:
            exc.field = ["filter", *(exc.field or [])]
            raise
    due_before = given.due_before
    if due_before is not None:
        if due_before.tzinfo is None:
            raise invalid("Give the time with its UTC offset.", "filter", "dueBefore")
        due_before = due_before.astimezone(UTC)  # SQLite compares stored UTC times as text
    statuses = given.statuses if given.statuses is not None else default_statuses(scope)
    return QueueFilter(
        statuses=list(dict.fromkeys(statuses)),
        category_code=given.category_code,
        priorities=given.priorities,
        overdue=given.overdue,
        due_before=due_before,
        bbox=given.bbox,
        text=text or None,
    )


def _common_conditions(sql: _Sql, scope: Scope | None, given: QueueFilter) -> list[str]:
    """Conditions that do not depend on the status (`scope` None: every department's cases)."""
    where = []
    if scope is not None:
        where.append(
            "c.department_id IS NULL"
            if scope.department_id is None
            else f"c.department_id = {sql.param(scope.department_id)}"
        )
    if given.category_code is not None:
        where.append(
            f"c.category_id = (SELECT id FROM categories WHERE code = {sql.param(given.category_code)})"
        )
    if given.priorities:
        marks = ", ".join(sql.param(int(p)) for p in given.priorities)
        where.append(f"c.priority IN ({marks})")
    if given.bbox is not None:
        box = given.bbox
        where.append(f"c.latitude BETWEEN {sql.param(box.min_lat)} AND {sql.param(box.max_lat)}")
        low, high = sql.param(box.min_lon), sql.param(box.max_lon)
        joiner = "OR" if box.crosses_antimeridian else "AND"
        where.append(f"(c.longitude >= {low} {joiner} c.longitude <= {high})")
    if given.text is not None:
        escaped = given.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = "ILIKE" if sql.postgres else "LIKE"  # SQLite's LIKE ignores ASCII case already
        pattern = sql.param(f"%{escaped}%")
        where.append(f"(c.summary {like} {pattern} ESCAPE '\\' OR c.reference {like} {pattern} ESCAPE '\\')")
    return where


def _due_conditions(sql: _Sql, status: Status, given: QueueFilter, now: datetime) -> list[str] | None:
    """Conditions on the active due time for one status; None when no case in it can match."""
    column = due_column(status)
    where: list[str] = []
    if given.overdue is True or given.due_before is not None:
        if column is None:
            return None
        if given.overdue:
            where.append(f"c.{column} < {sql.param(now)}")
        if given.due_before is not None:
            where.append(f"c.{column} < {sql.param(given.due_before)}")
    elif given.overdue is False and column is not None:
        where.append(f"(c.{column} IS NULL OR c.{column} >= {sql.param(now)})")
    return where


def _check_after(order: QueueOrder, after: Sequence[Any] | None) -> tuple[Any, ...] | None:
    """The cursor's key, checked for shape: it comes from a client."""
    if after is None:
        return None
    key = tuple(after)
    shapes = {
        QueueOrder.CREATED: (int,),
        QueueOrder.PRIORITY: (int, int),
        QueueOrder.DUE: (int, (datetime, type(None)), int),
    }[order]
    if len(key) != len(shapes) or not all(
        isinstance(v, s) and not isinstance(v, bool) for v, s in zip(key, shapes, strict=True)
    ):
        raise invalid("Not a cursor from this list.", "after")
    if order is QueueOrder.DUE:
        due = key[1]
        if (key[0] == 0) == (due is None) or (due is not None and due.tzinfo is None):
            raise invalid("Not a cursor from this list.", "after")
        key = (key[0], due.astimezone(UTC) if due else None, key[2])
    return key


def _branches(
    sql: _Sql, status: Status, order: QueueOrder, after: tuple[Any, ...] | None, limit: int, where: list[str]
) -> list[str]:
    """The branch(es) reading one status in index order, after the cursor, at most `limit` rows.

    Each selects (id, k1, k2): the order key beside the id, so the merge can order the union."""
    here = [*where, f"c.status = {sql.param(status.value)}"]

    def branch(select: str, conditions: list[str], order_by: str) -> str:
        return (
            f"SELECT * FROM (SELECT c.id AS id, {select} FROM cases c WHERE {' AND '.join(conditions)} "
            f"ORDER BY {order_by} LIMIT {limit}) AS b"
        )

    if order is QueueOrder.CREATED:
        keyset = [f"c.id < {sql.param(after[0])}"] if after else []
        return [branch("0 AS k1, 0 AS k2", here + keyset, "c.id DESC")]
    if order is QueueOrder.PRIORITY:
        keyset = []
        if after:
            p = sql.param(after[0])
            keyset = [f"(c.priority < {p} OR (c.priority = {p} AND c.id < {sql.param(after[1])}))"]
        return [branch("c.priority AS k1, 0 AS k2", here + keyset, "c.priority DESC, c.id DESC")]
    # DUE: cases with a due time first (k1 = 0), then those without (k1 = 1), each part in index order.
    column = due_column(status)
    found = []
    if column is not None and not (after and after[0] == 1):
        keyset = [f"c.{column} IS NOT NULL"]
        if after:
            at = sql.param(after[1])
            keyset.append(f"(c.{column} > {at} OR (c.{column} = {at} AND c.id > {sql.param(after[2])}))")
        found.append(branch(f"0 AS k1, c.{column} AS k2", here + keyset, f"c.{column}, c.id"))
    keyset = [f"c.{column} IS NULL"] if column is not None else []
    if after and after[0] == 1:
        keyset.append(f"c.id > {sql.param(after[2])}")
    # The null part has no due time to order by; a typed NULL keeps the union's column one type.
    no_due = "CAST(NULL AS TIMESTAMPTZ)" if sql.postgres else "NULL"
    found.append(branch(f"1 AS k1, {no_due} AS k2", here + keyset, "c.id"))
    return found


_MERGE_ORDER = {
    QueueOrder.CREATED: "q.id DESC",
    QueueOrder.PRIORITY: "q.k1 DESC, q.id DESC",
    QueueOrder.DUE: "q.k1, q.k2, q.id",
}


def _first_photo(sql: _Sql) -> str:
    """The first photo of the case's first report that has photos, by the reports (case_id, id) index."""
    first_id = "(r.photo_ids->>0)::int" if sql.postgres else "json_extract(r.photo_ids, '$[0]')"
    return (
        f"(SELECT p.sha256 FROM reports r JOIN photos p ON p.id = {first_id} "
        "WHERE r.case_id = c.id ORDER BY r.id LIMIT 1)"
    )


async def queue_page(
    scope: Scope,
    given: QueueFilter,
    order: QueueOrder,
    first: int,
    after: Sequence[Any] | None = None,
) -> QueuePage:
    """One page of the queue: `first` rows after the cursor key `after` (a row's `key`)."""
    conn = connections.get("default")
    now = clock.now()
    checked = _check_filter(given, scope)
    key = _check_after(order, after)
    sql = _Sql(conn)
    common = _common_conditions(sql, scope, checked)
    limit = first + 1
    branches: list[str] = []
    for status in checked.statuses or ():
        due = _due_conditions(sql, status, checked, now)
        if due is not None:
            branches += _branches(sql, status, order, key, limit, common + due)
    if not branches:
        return QueuePage(rows=[], has_next=False)
    merge = _MERGE_ORDER[order]
    union = " UNION ALL ".join(branches)
    text = f"""
SELECT c.id, c.reference, c.status, c.version, c.priority, c.reporter_count, c.response_due_at,
       c.resolution_due_at, c.created_at, c.category_id, cat.code, cat.name_zh, cat.name_en,
       c.department_id, d.code, d.name, c.assignee_id, u.display_name, {_first_photo(sql)}, q.k1, q.k2
FROM (SELECT * FROM ({union}) AS m ORDER BY {merge.replace("q.", "m.")} LIMIT {limit}) AS q
JOIN cases c ON c.id = q.id
JOIN categories cat ON cat.id = c.category_id
LEFT JOIN departments d ON d.id = c.department_id
LEFT JOIN users u ON u.id = c.assignee_id
ORDER BY {merge}"""
    records = await fetch(conn, *sql.positional(text))
    rows = [_row(record, order, now) for record in records[:first]]
    return QueuePage(rows=rows, has_next=len(records) > first)


def _row(record: Sequence[Any], order: QueueOrder, now: datetime) -> QueueRow:
    (case_id, reference, status, version, priority, reporters, response_due, resolution_due, created,
     category_id, category_code, name_zh, name_en, department_id, department_code, department_name,
     assignee_id, assignee_name, thumb, k1, k2) = record  # fmt: skip
    status = Status(status)
    column = due_column(status)
    raw_due = response_due if column == "response_due_at" else resolution_due if column else None
    due = as_datetime(raw_due) if raw_due is not None else None
    priority = Priority(int(priority))
    key: tuple[Any, ...] = {
        QueueOrder.CREATED: lambda: (case_id,),
        QueueOrder.PRIORITY: lambda: (int(priority), case_id),
        QueueOrder.DUE: lambda: (int(k1), due, case_id),
    }[order]()
    return QueueRow(
        id=case_id,
        reference=reference,
        status=status,
        version=version,
        priority=priority,
        reporter_count=reporters,
        category_id=category_id,
        category_code=category_code,
        category_name_zh=name_zh,
        category_name_en=name_en,
        department_id=department_id,
        department_code=department_code,
        department_name=department_name,
        assignee_id=assignee_id,
        assignee_name=assignee_name,
        thumb_sha256=thumb,
        due_at=due,
        overdue=due is not None and due < now,
        created_at=as_datetime(created),
        key=key,
    )


async def status_counts(scope: Scope, given: QueueFilter) -> dict[Status, int]:
    """How many cases of the queue are in each status, under every filter but the statuses (one query)."""
    conn = connections.get("default")
    now = clock.now()
    checked = _check_filter(replace(given, statuses=list(Status)), scope)
    sql = _Sql(conn)
    where = _common_conditions(sql, scope, checked)
    if checked.overdue is not None or checked.due_before is not None:
        where.append(_status_conditions(sql, list(Status), checked, now))
    text = f"SELECT c.status, COUNT(*) FROM cases c WHERE {' AND '.join(where)} GROUP BY c.status"
    return {Status(status): int(count) for status, count in await fetch(conn, *sql.positional(text))}


def _status_conditions(sql: _Sql, statuses: Sequence[Status], checked: QueueFilter, now: datetime) -> str:
    """The statuses and, where asked, the due time: a different column per status, so one alternative
    per status that can match."""
    alternatives = []
    for status in statuses:
        due = _due_conditions(sql, status, checked, now)
        if due is not None:
            alternatives.append(" AND ".join([f"c.status = {sql.param(status.value)}", *due]))
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "1 = 0"


def case_filter(
    conn: BaseDBAsyncClient, scope: Scope | None, given: QueueFilter, now: datetime
) -> tuple[str, list[Any]]:
    """The queue's filters as one SQL condition over `cases c` (with `{}` marks, see kernel.rawsql.fetch)
    and their values, for reading every matching case rather than a page (exports). `scope` None:
    every department's cases; no statuses given: every status."""
    checked = _check_filter(replace(given, statuses=given.statuses or list(Status)), scope or Scope(None))
    sql = _Sql(conn)
    where = _common_conditions(sql, scope, checked)
    due_filtered = checked.overdue is not None or checked.due_before is not None
    if given.statuses or due_filtered:
        where.append(_status_conditions(sql, checked.statuses or (), checked, now))
    return sql.positional(" AND ".join(where) or "1 = 1")


# --- assigning and bulk accepting -----------------------------------------------------------------


async def assign_case(user: User, case_id: int, assignee_id: int | None) -> Case:
    """Give a case to one of its department's staff (None: take it back). Sending it again changes nothing."""
    case, _ = await access.case_for(user, case_id, "input", "caseId", need_reporter=False)
    office = user.role in (Role.DISPATCHER, Role.ADMIN)
    if not office and not (user.role is Role.STAFF and user.department_id == case.department_id):
        raise forbidden("Only the department's staff and dispatchers assign its cases.")
    if case.department_id is None:
        raise conflict("The case is with no department; route it first.", "input", "caseId")
    if case.assignee_id == assignee_id:
        return case
    if assignee_id is not None and not await User.exists(
        id=assignee_id, role=Role.STAFF, department_id=case.department_id, is_active=True
    ):
        raise invalid("Not a staff member of the case's department.", "input", "assigneeId")
    previous = case.assignee_id
    async with atomic():
        # Conditional on the assignee we saw: two people assigning at once, one wins.
        changed = await Case.filter(
            id=case.id, assignee_id=previous, department_id=case.department_id
        ).update(assignee_id=assignee_id, updated_at=clock.now())
        if not changed:
            raise conflict("The case was assigned or moved meanwhile. Reload it.", "input", "caseId")
        await casework.record(case, user, "assigned", assignee=assignee_id, previous=previous)
    case.assignee_id = assignee_id
    return case


@dataclass(frozen=True, slots=True)
class AcceptItem:
    case_id: int
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class AcceptResult:
    case_id: int
    case: Case | None
    error: DomainError | None


async def accept_cases(user: User, items: Sequence[AcceptItem]) -> list[AcceptResult]:
    """Accept several cases, each its own transition: one refused (stale, wrong state) stops no other."""
    if not 1 <= len(items) <= MAX_BULK_ACCEPT:
        raise invalid(f"Give 1 to {MAX_BULK_ACCEPT} cases.", "input", "cases")
    results = []
    for index, item in enumerate(items):
        step = casework.Step(Action.ACCEPT, item.expected_version)
        try:
            case = await casework.transition(item.case_id, user, step)
        except DomainError as exc:
            # The transition names its own input's fields; point them at this item of the list.
            name = (exc.field or ["input", "caseId"])[-1]
            exc.field = ["input", "cases", str(index), name]
            results.append(AcceptResult(item.case_id, None, exc))
        else:
            results.append(AcceptResult(item.case_id, case, None))
    return results
