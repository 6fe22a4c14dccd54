"""Service-level policies: how long a department has to accept (or return) a case and to resolve it.

Policies are data (`reports/data/sla_policies.json`), keyed by code; each category names one. Format:

    {"policies": [{"code": "hotline_5wd", "description": "...",
                   "response": {"working_days": 1},      # or working_hours / hours / days
                   "resolution": {"working_days": 5},
                   "pause_in_statuses": ["RETURNED"],     # the clock stops while the case is there
                   "warn_at": 0.8,                        # APPROACHING once 80 % of the time is used
                   "source": "the rule the numbers come from"}]}

Working units follow a `WorkingCalendar`; `hours`/`days` run round the clock (emergencies do not wait
for Monday). The caller picks the start: by 12345 practice both clocks start when the case is dispatched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reports.calendar import Interval, WorkingCalendar, add_elapsed_time, elapsed_time_between
from reports.datafile import DataFileError, expect, only_keys, read_json, require, where
from reports.lifecycle import Status


class SpanUnit(enum.StrEnum):
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"
    HOURS = "hours"
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class Span:
    amount: float
    unit: SpanUnit

    def due(self, start: datetime, calendar: WorkingCalendar, pauses: Iterable[Interval] = ()) -> datetime:
        match self.unit:
            case SpanUnit.WORKING_HOURS:
                return calendar.add_working_time(start, hours=self.amount, pauses=pauses)
            case SpanUnit.WORKING_DAYS:
                return calendar.add_working_time(start, working_days=int(self.amount), pauses=pauses)
            case SpanUnit.HOURS:
                return add_elapsed_time(start, timedelta(hours=self.amount), pauses)
            case SpanUnit.DAYS:
                return add_elapsed_time(start, timedelta(days=self.amount), pauses)

    def measure(
        self, a: datetime, b: datetime, calendar: WorkingCalendar, pauses: Iterable[Interval] = ()
    ) -> timedelta:
        """Time from `a` to `b` on this span's own clock."""
        if self.unit in (SpanUnit.WORKING_HOURS, SpanUnit.WORKING_DAYS):
            return calendar.working_time_between(a, b, pauses)
        return elapsed_time_between(a, b, pauses)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    code: str
    description: str
    response: Span
    resolution: Span
    pause_in_statuses: frozenset[Status]
    warn_at: float
    source: str


class DeadlineState(enum.StrEnum):
    ON_TIME = "ON_TIME"
    APPROACHING = "APPROACHING"
    OVERDUE = "OVERDUE"


def response_due(
    policy: SlaPolicy, start: datetime, calendar: WorkingCalendar, pauses: Iterable[Interval] = ()
) -> datetime:
    return policy.response.due(start, calendar, pauses)


def resolution_due(
    policy: SlaPolicy, start: datetime, calendar: WorkingCalendar, pauses: Iterable[Interval] = ()
) -> datetime:
    return policy.resolution.due(start, calendar, pauses)


def deadline_state(
    span: Span,
    start: datetime,
    at: datetime,
    calendar: WorkingCalendar,
    pauses: Iterable[Interval] = (),
    warn_at: float = 0.8,
) -> DeadlineState:
    """OVERDUE after the due time; APPROACHING once `warn_at` of the allowed time is used."""
    stops = list(pauses)
    return state_against(span, start, span.due(start, calendar, stops), at, calendar, stops, warn_at)


def state_against(
    span: Span,
    start: datetime,
    due: datetime,
    at: datetime,
    calendar: WorkingCalendar,
    pauses: Iterable[Interval] = (),
    warn_at: float = 0.8,
) -> DeadlineState:
    """As `deadline_state`, against a stored due time (which may include approved extensions)."""
    if at > due:
        return DeadlineState.OVERDUE
    stops = list(pauses)
    allowed = span.measure(start, due, calendar, stops)
    used = span.measure(start, at, calendar, stops)
    return DeadlineState.APPROACHING if used >= allowed * warn_at else DeadlineState.ON_TIME


def paused_intervals(
    history: Iterable[tuple[datetime, Status]], pause_in: Iterable[Status], until: datetime
) -> list[Interval]:
    """The intervals a case spent in a pausing status, from its (time, new status) history."""
    pausing = frozenset(pause_in)
    ordered = sorted(history, key=lambda item: item[0])
    ends = [moment for moment, _ in ordered[1:]] + [until]
    return [(moment, end) for (moment, status), end in zip(ordered, ends, strict=True) if status in pausing]


_SPAN_UNITS = [u.value for u in SpanUnit]
_POLICY_KEYS = ("code", "description", "response", "resolution", "pause_in_statuses", "warn_at", "source")


def load_sla_policies(source: str | Path = "sla_policies.json") -> dict[str, SlaPolicy]:
    raw = expect(read_json(source), dict)
    only_keys(raw, ("policies",))
    policies: dict[str, SlaPolicy] = {}
    for i, item in enumerate(require(raw, "policies", list)):
        policy = _policy(item, "policies", i)
        if policy.code in policies:
            raise DataFileError(f"{where('policies', i)}: duplicate code {policy.code!r}")
        policies[policy.code] = policy
    return policies


def _policy(raw: Any, *path: str | int) -> SlaPolicy:
    expect(raw, dict, *path)
    only_keys(raw, _POLICY_KEYS, *path)
    statuses = require(raw, "pause_in_statuses", list, *path)
    try:
        pause_in = frozenset(Status(s) for s in statuses)
    except ValueError as exc:
        raise DataFileError(f"{where(*path, 'pause_in_statuses')}: {exc}") from None
    warn_at = expect(raw.get("warn_at", 0.8), (int, float), *path, "warn_at")
    if not 0 < warn_at <= 1:
        raise DataFileError(f"{where(*path, 'warn_at')}: must be in (0, 1]")
    return SlaPolicy(
        code=require(raw, "code", str, *path),
        description=require(raw, "description", str, *path),
        response=_span(require(raw, "response", dict, *path), *path, "response"),
        resolution=_span(require(raw, "resolution", dict, *path), *path, "resolution"),
        pause_in_statuses=pause_in,
        warn_at=float(warn_at),
        source=require(raw, "source", str, *path),
    )


def _span(raw: Mapping[str, Any], *path: str | int) -> Span:
    if len(raw) != 1 or next(iter(raw)) not in _SPAN_UNITS:
        raise DataFileError(f"{where(*path)}: exactly one of {_SPAN_UNITS}")
    unit, amount = next(iter(raw.items()))
    expect(amount, (int, float), *path, unit)
    if amount <= 0 or (unit == SpanUnit.WORKING_DAYS and not float(amount).is_integer()):
        raise DataFileError(f"{where(*path, unit)}: must be positive (and whole for working_days)")
    return Span(float(amount), SpanUnit(unit))
