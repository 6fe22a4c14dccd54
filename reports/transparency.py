"""Public transparency: how each public case was handled, and each department's figures per month.

Both are for anyone, signed in or not, so they say nothing personal: no names, no phone numbers, no
staff accounts, no notes (a resolution note is staff's free text and may name people, so retention
clears it with the case's personal details; the public summary is built from statuses and dates
instead). Dates are days in the city's timezone (the working calendar's), like the statistics' periods.

The monthly figures are the managers' statistics (reports.statistics, docs/statistics.md) for each
month of the city's calendar, per department: received, resolved, resolved on time against the
deadline each resolution had, and the residents' ratings (count, average, share of 4 or 5).
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from kernel.errors import invalid
from kernel.limits import MAX_DATE, MIN_DATE
from reports import access, statistics
from reports.lifecycle import Status
from reports.models import Case
from reports.store import working_calendar

MAX_MONTHS = 24  # one question covers at most two years: 24 months of statements
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits: \d takes any script's

RESOLVED = (Status.RESOLVED, Status.VERIFIED, Status.CLOSED)
# What the public is told a case is waiting for, by status (resolved ones get their outcome instead).
_UNDER_WAY = {
    Status.SUBMITTED: "Waiting to be assigned.",
    Status.TRIAGE: "Waiting to be assigned.",
    Status.ROUTED: "Waiting for the responsible department to accept it.",
    Status.RETURNED: "Being reassigned to the responsible department.",
    Status.ACCEPTED: "Being handled by the responsible department.",
    Status.IN_PROGRESS: "Being handled by the responsible department.",
    Status.REJECTED: "Closed without action.",
    Status.MERGED: "Merged into another case about the same problem.",
}


@dataclass(frozen=True, slots=True)
class PublicHandling:
    """A public case's handling as anyone may read it: its steps' days and a summary in words."""

    received_on: date
    assigned_on: date | None  # when a department first got it
    resolved_on: date | None  # the latest resolution, while the case stands resolved
    closed_on: date | None
    resolution_due_on: date | None
    resolved_on_time: bool | None  # null: not resolved, or no deadline
    resolution_summary: str | None  # the outcome, once resolved
    status_notes: str  # everything above in words (Open311's status_notes)


def _day(moment: datetime | None) -> date | None:
    """The day of `moment` in the city's timezone."""
    return None if moment is None else moment.astimezone(working_calendar().tz).date()


@functools.lru_cache(maxsize=65_536)
def _day_of_minute(tz: tzinfo, minute: str) -> date:
    return datetime.fromisoformat(f"{minute}:00+00:00").astimezone(tz).date()


def day_of_stamp(tz: tzinfo, stamp: str) -> date:
    """The day in `tz` of a UTC time written as kernel.rawsql.utc_seconds writes it, remembered by the
    minute (every zone's offset has been whole minutes for a century): a page of requests reads the
    same days again and again, and parsing and converting each one cost more than the rest of a row."""
    return _day_of_minute(tz, stamp[:16])


@dataclass(frozen=True, slots=True)
class HandlingFacts:
    """What a public case's handling is told from: its status and the times of its steps (UTC)."""

    status: Status
    created_at: datetime
    dispatched_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution_due_at: datetime | None
    status_changed_at: datetime | None
    rework_count: int


@dataclass(frozen=True, slots=True)
class HandlingDays:
    """The same facts as days in the city's timezone; `on_time`: resolved no later than due (None
    without both times)."""

    status: Status
    received_on: date
    dispatched_on: date | None
    resolved_on: date | None
    closed_on: date | None
    resolution_due_on: date | None
    status_changed_on: date | None
    on_time: bool | None
    rework_count: int


def facts_of(case: Case) -> HandlingFacts:
    return HandlingFacts(
        status=Status(case.status),
        created_at=case.created_at,
        dispatched_at=case.dispatched_at,
        resolved_at=case.resolved_at,
        closed_at=case.closed_at,
        resolution_due_at=case.resolution_due_at,
        status_changed_at=case.status_changed_at,
        rework_count=case.rework_count,
    )


def public_handling(case: Case) -> PublicHandling | None:
    """How `case` was handled, for the public; None unless the case is public (reports.access)."""
    if not access.visible_public_cases(None, [case]):
        return None
    return handling(facts_of(case))


def handling(facts: HandlingFacts) -> PublicHandling:
    """The public handling of a case known to be public."""
    on_time = None
    if facts.resolved_at and facts.resolution_due_at:
        on_time = facts.resolved_at <= facts.resolution_due_at
    return handling_of_days(
        HandlingDays(
            status=facts.status,
            received_on=facts.created_at.astimezone(working_calendar().tz).date(),
            dispatched_on=_day(facts.dispatched_at),
            resolved_on=_day(facts.resolved_at),
            closed_on=_day(facts.closed_at),
            resolution_due_on=_day(facts.resolution_due_at),
            status_changed_on=_day(facts.status_changed_at),
            on_time=on_time,
            rework_count=facts.rework_count,
        )
    )


@functools.lru_cache(maxsize=4096)
def handling_of_days(days: HandlingDays) -> PublicHandling:
    """The public handling of a case known to be public, from its days: for readers that select only
    public cases (by `reports.access.PUBLIC_RULE`) and read their columns by hand, as Open311's request
    pages do. Remembered: the cases of a page share a few combinations of days and statuses."""
    status = days.status
    received_on = days.received_on
    assigned_on = days.dispatched_on
    resolved_on = days.resolved_on if status in RESOLVED else None
    closed_on = days.closed_on if status is Status.CLOSED else None
    due_on = days.resolution_due_on
    on_time = days.on_time if resolved_on is not None else None
    notes = [f"Received on {received_on.isoformat()}."]
    if assigned_on is not None:
        notes.append(f"Assigned to the responsible department on {assigned_on.isoformat()}.")
    summary = None
    if status in RESOLVED:
        deadline = "" if on_time is None or due_on is None else (
            f", {'within' if on_time else 'after'} its deadline of {due_on.isoformat()}"
        )  # fmt: skip
        summary = f"Resolved on {resolved_on.isoformat()}{deadline}." if resolved_on else "Resolved."
        if days.rework_count:
            times = "once" if days.rework_count == 1 else f"{days.rework_count} times"
            summary += f" Sent back for rework {times} before."
        if status is Status.VERIFIED:
            summary += " The result was checked."
        if closed_on is not None:
            summary += f" Closed on {closed_on.isoformat()}."
        notes.append(summary)
    elif status is Status.REOPENED:
        notes.append(f"Reopened for further work on {(days.status_changed_on or received_on).isoformat()}.")
    else:
        notes.append(_UNDER_WAY[status])
    return PublicHandling(
        received_on=received_on,
        assigned_on=assigned_on,
        resolved_on=resolved_on,
        closed_on=closed_on,
        resolution_due_on=due_on,
        resolved_on_time=on_time,
        resolution_summary=summary,
        status_notes=" ".join(notes),
    )


def public_status_notes(case: Case) -> str | None:
    """The public handling of `case` in words (Open311 `status_notes`); None unless the case is public."""
    handling = public_handling(case)
    return None if handling is None else handling.status_notes


# --- the monthly figures ------------------------------------------------------------------------------


def parse_month(text: str, field: str) -> date:
    """`2026-03` as the month's first day; INVALID (at `field`) for anything else."""
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match[2]) <= 12 or not MIN_DATE.year <= int(match[1]) <= MAX_DATE.year:
        raise invalid(f"{field} must be a month like 2026-03.", field)
    return date(int(match[1]), int(match[2]), 1)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def months_between(from_month: str, to_month: str) -> list[date]:
    """The first days of the months `from_month` to `to_month`, both counted."""
    first, last = parse_month(from_month, "fromMonth"), parse_month(to_month, "toMonth")
    if last < first:
        raise invalid("toMonth must not be before fromMonth.", "toMonth")
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MAX_MONTHS:
        raise invalid(f"At most {MAX_MONTHS} months at a time.", "toMonth")
    months = [first]
    while len(months) < count:
        months.append(_next_month(months[-1]))
    return months


@dataclass(frozen=True, slots=True)
class DepartmentMonth:
    month: date  # its first day
    department_id: int
    figures: statistics.Figures


async def department_months(from_month: str, to_month: str) -> list[DepartmentMonth]:
    """Every department's figures for each month of the range, by month then department code; a
    department with nothing in a month gets a row of zeros (it answered for nothing, on the record)."""
    months = months_between(from_month, to_month)
    # Independent statements: on PostgreSQL they share the pool side by side.
    found, departments = await asyncio.gather(
        asyncio.gather(*(statistics.department_figures(first, _next_month(first)) for first in months)),
        access.visible_departments(None).order_by("code").values_list("id"),
    )
    rows = []
    for first, figures in zip(months, found, strict=True):
        by_department = {f.department_id: f for f in figures}
        for (department_id,) in departments:
            row = by_department.get(department_id) or statistics.Figures(department_id=department_id)
            rows.append(DepartmentMonth(month=first, department_id=department_id, figures=row))
    return rows
