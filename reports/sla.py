"""Service-level policies: how long a department has to accept (or return) a case and to resolve it.

Policies are data (`reports/data/sla_policies.json`), keyed by code; each category names one. Format:

    {"policies": [{"code": "hotline_5wd", "description": "...",
                   "response": {"working_days": 1},      # or working_hours / hours / days
                   "resolution": {"working_days": 5},
                   "pause_in_statuses": ["RETURNED"],     # the clock stops while the case is there
                   "warn_at": 0.8,                        # APPROACHING once 80 % of the time is used
                   "source": "the rule the numbers come from",
                   "variants": [{"priorities": ["URGENT"], "use": "urgent_24h", "source": "why"}]}]}

A variant sends some of the policy's cases to another policy: those whose priority is listed, those
dispatched to a department whose region code starts with `region`, or both. The most specific match wins
(region and priorities, then region, then priorities; then the longer region prefix, then the first
listed). The policy named by `use` is taken as it is: its own variants are not followed, so there are no
chains. The choice is made when a department first gets the case (`choose_policy`) and stored on it.

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
from reports.models import Priority


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
class Variant:
    """Cases matching `region` (a region-code prefix) and/or `priorities` run on the policy `use`."""

    use: str
    region: str | None
    priorities: frozenset[Priority]
    source: str

    def matches(self, priority: Priority, region: str | None) -> bool:
        if self.priorities and priority not in self.priorities:
            return False
        return self.region is None or (region is not None and region.startswith(self.region))

    def specificity(self) -> tuple[bool, bool, int]:
        """Region and priorities > region > priorities; then the longer region prefix."""
        regional = self.region is not None
        return (regional and bool(self.priorities), regional, len(self.region or ""))


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    code: str
    description: str
    response: Span
    resolution: Span
    pause_in_statuses: frozenset[Status]
    warn_at: float
    source: str
    variants: tuple[Variant, ...] = ()


def choose_policy(
    policies: Mapping[str, SlaPolicy], code: str, priority: Priority, region: str | None
) -> str:
    """The code of the policy a case runs on when its category names `code`, given its priority and the
    region code of the department it is dispatched to (None: the department has no jurisdiction)."""
    policy = policies.get(code)
    matching = [v for v in policy.variants if v.matches(priority, region)] if policy else []
    # max() keeps the first of equal keys: among equally specific variants the first listed wins.
    best = max(matching, key=Variant.specificity, default=None)
    return best.use if best else code


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
_POLICY_KEYS = (
    "code",
    "description",
    "response",
    "resolution",
    "pause_in_statuses",
    "warn_at",
    "source",
    "variants",
)
_VARIANT_KEYS = ("region", "priorities", "use", "source")
_PRIORITIES = [p.name for p in Priority]


def load_sla_policies(source: str | Path = "sla_policies.json") -> dict[str, SlaPolicy]:
    raw = expect(read_json(source), dict)
    only_keys(raw, ("policies",))
    policies: dict[str, SlaPolicy] = {}
    for i, item in enumerate(require(raw, "policies", list)):
        policy = _policy(item, "policies", i)
        if policy.code in policies:
            raise DataFileError(f"{where('policies', i)}: duplicate code {policy.code!r}")
        policies[policy.code] = policy
    for i, policy in enumerate(policies.values()):
        for j, variant in enumerate(policy.variants):
            if variant.use not in policies or variant.use == policy.code:
                raise DataFileError(
                    f"{where('policies', i, 'variants', j, 'use')}: {variant.use!r} is not another policy"
                )
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
    variants = expect(raw.get("variants", []), list, *path, "variants")
    return SlaPolicy(
        code=require(raw, "code", str, *path),
        description=require(raw, "description", str, *path),
        response=_span(require(raw, "response", dict, *path), *path, "response"),
        resolution=_span(require(raw, "resolution", dict, *path), *path, "resolution"),
        pause_in_statuses=pause_in,
        warn_at=float(warn_at),
        source=require(raw, "source", str, *path),
        variants=tuple(_variant(v, *path, "variants", j) for j, v in enumerate(variants)),
    )


def _variant(raw: Any, *path: str | int) -> Variant:
    expect(raw, dict, *path)
    only_keys(raw, _VARIANT_KEYS, *path)
    if "region" not in raw and "priorities" not in raw:
        raise DataFileError(f"{where(*path)}: needs a region, priorities or both")
    region = None
    if "region" in raw:
        region = expect(raw["region"], str, *path, "region")
        if not region.isdigit() or not region.isascii():
            raise DataFileError(f"{where(*path, 'region')}: a region-code prefix of digits, got {region!r}")
    names = expect(raw.get("priorities", []), list, *path, "priorities")
    if "priorities" in raw and not names:
        raise DataFileError(f"{where(*path, 'priorities')}: list at least one of {_PRIORITIES}")
    unknown = [n for n in names if n not in _PRIORITIES]
    if unknown:
        raise DataFileError(f"{where(*path, 'priorities')}: unknown {unknown}; known: {_PRIORITIES}")
    return Variant(
        use=require(raw, "use", str, *path),
        region=region,
        priorities=frozenset(Priority[n] for n in names),
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
