"""Patrol compliance rules as data, and verdicts that explain themselves.

Local rules differ (Henan: village chiefs weekly; Guangzhou: every 旬, ≥10 min and ≥1 km; Akqi: ≥30 min,
≥2 km, March-December only, ≥96 h apart), so each rule is a row with its source citation, and every
patrol's verdict lists the reasons it counted or not (patrol-anchors.md §c, §e.1).
"""

from __future__ import annotations

import bisect
import calendar
import enum
import functools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from kernel import city
from kernel.errors import invalid

SEED_RULES_PATH = Path(__file__).parent / "data" / "patrol_rules.json"
ALL_MONTHS = frozenset(range(1, 13))


class ChiefLevel(enum.StrEnum):
    PROVINCE = "PROVINCE"
    CITY = "CITY"
    COUNTY = "COUNTY"
    TOWNSHIP = "TOWNSHIP"
    VILLAGE = "VILLAGE"


class ChiefKind(enum.StrEnum):
    RIVER = "RIVER"
    LAKE = "LAKE"
    FOREST = "FOREST"
    PATROLLER = "PATROLLER"


class AreaKind(enum.StrEnum):
    RIVER_SEGMENT = "RIVER_SEGMENT"
    LAKE = "LAKE"
    FOREST_AREA = "FOREST_AREA"


class Period(enum.StrEnum):
    WEEK = "WEEK"  # ISO week, Monday to Sunday
    DEKAD = "DEKAD"  # 旬: days 1-10, 11-20, 21-end of month
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    HALF_YEAR = "HALF_YEAR"
    YEAR = "YEAR"
    WORKING_DAY = "WORKING_DAY"


class CountScope(enum.StrEnum):
    PER_CHIEF = "PER_CHIEF"  # patrols of any of the chief's areas count together
    PER_AREA = "PER_AREA"  # each responsible river / area needs its own patrols (Sixian)


@dataclass(frozen=True, slots=True)
class PatrolRule:
    code: str
    source: str  # citation: issuer, title, year, article or URL
    region_code: str  # GB/T 2260 code; trailing "00" pairs are wildcards ("410000" = all of Henan)
    chief_level: ChiefLevel
    chief_kind: ChiefKind
    period: Period
    min_count: int
    area_kind: AreaKind | None = None  # None: any area
    count_scope: CountScope = CountScope.PER_CHIEF
    active_months: frozenset[int] = ALL_MONTHS
    min_duration_min: float | None = None
    min_distance_km: float | None = None
    min_coverage: float | None = None
    min_gap_hours: float | None = None
    effective_from: date | None = None
    effective_to: date | None = None

    @property
    def region_prefix(self) -> str:
        code = self.region_code
        while code.endswith("00"):
            code = code[:-2]
        return code

    def in_force(self, day: date) -> bool:
        starts_ok = self.effective_from is None or self.effective_from <= day
        return starts_ok and (self.effective_to is None or day <= self.effective_to)


class AssignmentLike(Protocol):
    @property
    def region_code(self) -> str: ...
    @property
    def chief_level(self) -> ChiefLevel: ...
    @property
    def chief_kind(self) -> ChiefKind: ...
    @property
    def area_kind(self) -> AreaKind: ...


@dataclass(frozen=True, slots=True)
class Assignment:
    region_code: str  # 6-digit county or 12-digit statistical code of the area
    chief_level: ChiefLevel
    chief_kind: ChiefKind
    area_kind: AreaKind


def rule_applies(rule: PatrolRule, assignment: AssignmentLike, on: date | None = None) -> bool:
    return (
        assignment.region_code.startswith(rule.region_prefix)
        and assignment.chief_level == rule.chief_level
        and assignment.chief_kind == rule.chief_kind
        and (rule.area_kind is None or assignment.area_kind == rule.area_kind)
        and (on is None or rule.in_force(on))
    )


# --- periods --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    label: str
    first_day: date  # local calendar dates, inclusive
    last_day: date


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _window_containing(day: date, period: Period) -> PeriodWindow:
    if period is Period.WEEK:
        monday = day - timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        return PeriodWindow(f"{year}-W{week:02d}", monday, monday + timedelta(days=6))
    if period is Period.DEKAD:
        index = min((day.day - 1) // 10, 2)
        first = day.replace(day=index * 10 + 1)
        last = _month_end(day.year, day.month) if index == 2 else first + timedelta(days=9)
        return PeriodWindow(f"{day:%Y-%m}-D{index + 1}", first, last)
    if period is Period.WORKING_DAY:
        return PeriodWindow(day.isoformat(), day, day)
    months = {Period.MONTH: 1, Period.QUARTER: 3, Period.HALF_YEAR: 6, Period.YEAR: 12}[period]
    first = date(day.year, (day.month - 1) // months * months + 1, 1)
    last = _add_months(first, months) - timedelta(days=1)
    number = (day.month - 1) // months + 1
    label = {
        Period.MONTH: f"{day:%Y-%m}",
        Period.QUARTER: f"{day.year}-Q{number}",
        Period.HALF_YEAR: f"{day.year}-H{number}",
        Period.YEAR: f"{day.year}",
    }[period]
    return PeriodWindow(label, first, last)


def _is_working_day(day: date, holidays: frozenset[date], makeup_workdays: frozenset[date]) -> bool:
    # China moves weekend days to make long holidays (调休), so both lists come from the yearly notice.
    return day in makeup_workdays or (day.weekday() < 5 and day not in holidays)


@functools.lru_cache(maxsize=256)
def split_periods(
    period: Period,
    first_day: date,
    last_day: date,
    holidays: frozenset[date] = frozenset(),
    makeup_workdays: frozenset[date] = frozenset(),
) -> tuple[PeriodWindow, ...]:
    """Calendar periods overlapping the local dates `first_day..last_day` (inclusive), in order.

    Edge windows may extend beyond the range; `evaluate` treats them as partial. Working days skip
    weekends and `holidays` and add `makeup_workdays`.
    """
    windows: list[PeriodWindow] = []
    day = first_day
    while day <= last_day:
        window = _window_containing(day, period)
        if period is not Period.WORKING_DAY or _is_working_day(day, holidays, makeup_workdays):
            windows.append(window)
        day = window.last_day + timedelta(days=1)
    return tuple(windows)


def _months_of(window: PeriodWindow) -> set[int]:
    months: set[int] = set()
    day = window.first_day.replace(day=1)
    while day <= window.last_day and len(months) < 12:
        months.add(day.month)
        day = _add_months(day, 1)
    return months


# --- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatrolSummary:
    patrol_id: str
    chief_id: str
    area_id: str
    started_at: datetime  # aware
    ended_at: datetime
    distance_m: float
    coverage: float | None = None  # share of the area covered, 0..1; None when unknown
    disqualified: str | None = None  # set by review or authenticity checks: why it cannot count
    duration_s: float | None = None  # measured duration (e.g. without pauses); default: end - start

    @property
    def duration_min(self) -> float:
        if self.duration_s is not None:
            return self.duration_s / 60.0
        return (self.ended_at - self.started_at).total_seconds() / 60.0


@dataclass(frozen=True, slots=True)
class PeriodResult:
    label: str
    first_day: date
    last_day: date
    area_id: str | None  # set when the rule counts per area
    required: int
    done: int
    counted: tuple[str, ...]
    note: str | None = None  # why nothing is required (inactive month, partial period, not in force)

    @property
    def missing(self) -> int:
        return max(0, self.required - self.done)


@dataclass(frozen=True, slots=True)
class PatrolJudgement:
    patrol_id: str
    counted: bool
    period: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    rule_code: str
    periods: tuple[PeriodResult, ...]
    patrols: tuple[PatrolJudgement, ...]

    @property
    def required(self) -> int:
        return sum(p.required for p in self.periods)

    @property
    def done(self) -> int:
        return sum(min(p.done, p.required) for p in self.periods)

    @property
    def missing(self) -> int:
        return sum(p.missing for p in self.periods)

    @property
    def met(self) -> bool:
        return self.missing == 0


def _num(value: float) -> str:
    return f"{round(value, 1):g}"


def _num_down(value: float) -> str:
    # A shortfall is shown rounded down, so 29.96 min never reads as "30 min < 30 min required".
    return f"{math.floor(value * 10) / 10:g}"


# What each threshold measures of a patrol, in the order the reasons list them.
_MEASURED: tuple[tuple[str, str, Callable[[PatrolSummary], float | None]], ...] = (
    ("duration", "min_duration_min", lambda p: p.duration_min),
    ("distance", "min_distance_km", lambda p: p.distance_m / 1000.0),
    ("coverage", "min_coverage", lambda p: p.coverage),
)
_UNITS = {"duration": (" min", 1.0), "distance": (" km", 1.0), "coverage": ("% coverage", 100.0)}


# (what, required, measure) of the thresholds a rule sets: looked up once per evaluation, not per patrol.
_Checks = tuple[tuple[str, float, Callable[[PatrolSummary], float | None]], ...]


def _thresholds(rule: PatrolRule) -> _Checks:
    return tuple(
        (what, getattr(rule, name), measure)
        for what, name, measure in _MEASURED
        if getattr(rule, name) is not None
    )


def _meets(checks: _Checks, patrol: PatrolSummary) -> bool:
    for _, required, measure in checks:
        actual = measure(patrol)
        if actual is None or actual < required:
            return False
    return True


def _threshold_reasons(checks: _Checks, patrol: PatrolSummary) -> list[str]:
    """Why the thresholds pass or fail (`_meets` decides)."""
    reasons = []
    for what, required, measure in checks:
        actual = measure(patrol)
        unit, scale = _UNITS[what]
        wanted = f"{_num(required * scale)}{unit} required"
        if actual is None:
            reasons.append(f"{what} unknown; {wanted}")
        elif actual < required:
            reasons.append(f"{_num_down(actual * scale)}{unit} < {wanted}")
        else:
            reasons.append(f"{_num(actual * scale)}{unit} ≥ {wanted}")
    return reasons


def _gap_hours(patrol: PatrolSummary, last_counted_end: datetime | None) -> float | None:
    if last_counted_end is None:
        return None
    return (patrol.started_at - last_counted_end).total_seconds() / 3600.0


def _too_soon(rule: PatrolRule, gap_h: float | None) -> bool:
    return rule.min_gap_hours is not None and gap_h is not None and gap_h < rule.min_gap_hours


@dataclass(frozen=True, slots=True)
class _Unplaced:
    reason: str


@dataclass
class _Slot:
    window: PeriodWindow
    area_id: str | None
    required: int
    note: str | None
    counted: list[str] = field(default_factory=list)


def _window_note(rule: PatrolRule, window: PeriodWindow, first_day: date, last_day: date) -> str | None:
    if window.first_day < first_day or window.last_day > last_day:
        return f"period {window.label} is only partly inside the assessment range"
    if not _months_of(window) & rule.active_months:
        return f"period {window.label} is outside the rule's active months"
    if not (rule.in_force(window.first_day) or rule.in_force(window.last_day)):
        return f"rule {rule.code} is not in force in {window.label}"
    return None


@functools.lru_cache(maxsize=1024)
def _windows(
    rule: PatrolRule,
    first_day: date,
    last_day: date,
    holidays: frozenset[date],
    makeup_workdays: frozenset[date],
) -> tuple[tuple[PeriodWindow, ...], tuple[str | None, ...], tuple[date, ...]]:
    """The rule's periods over the range, why each requires nothing (None: it requires `min_count`),
    and their first days; the same for every chief assessed over the range, so computed once."""
    windows = split_periods(rule.period, first_day, last_day, holidays, makeup_workdays)
    notes = tuple(_window_note(rule, w, first_day, last_day) for w in windows)
    return windows, notes, tuple(w.first_day for w in windows)


def _area_keys(rule: PatrolRule, areas: Sequence[str] | None) -> Sequence[str | None]:
    if rule.count_scope is not CountScope.PER_AREA:
        return [None]
    if not areas:
        raise invalid(f"Rule {rule.code} counts per area: pass the assigned areas.", "areas")
    return list(areas)


def _placed(
    rule: PatrolRule,
    patrols: Iterable[PatrolSummary],
    windows: Sequence[PeriodWindow],
    starts: Sequence[date],
    tz: ZoneInfo,
) -> Iterator[tuple[PatrolSummary, int, date, str | None]]:
    """Each patrol in start order with the index of its local start date's period (-1: none before
    it), that date and its area key (None unless the rule counts per area)."""
    per_area = rule.count_scope is CountScope.PER_AREA
    for patrol in sorted(patrols, key=lambda p: p.started_at):
        local_day = patrol.started_at.astimezone(tz).date()
        area = patrol.area_id if per_area else None
        yield patrol, bisect.bisect_right(starts, local_day) - 1, local_day, area


def _counts(
    rule: PatrolRule,
    checks: _Checks,
    patrol: PatrolSummary,
    note: str | None,
    last_counted_end: datetime | None,
) -> bool:
    """Whether a patrol placed in a period (whose `note` says why it requires nothing) counts: the one
    decision behind both `evaluate` and `count`."""
    return (
        not patrol.disqualified
        and note is None
        and _meets(checks, patrol)
        and not _too_soon(rule, _gap_hours(patrol, last_counted_end))
    )


def _place(
    rule: PatrolRule,
    slots: dict[tuple[int, str | None], _Slot],
    windows: Sequence[PeriodWindow],
    index: int,
    local_day: date,
    area: str | None,
) -> _Slot | _Unplaced:
    if index < 0 or local_day > windows[index].last_day:
        return _Unplaced(
            f"{local_day} is in no {rule.period.lower().replace('_', ' ')} period of the assessment range"
        )
    slot = slots.get((index, area))
    return slot if slot is not None else _Unplaced(f"area {area} is not one of the assessed areas")


def _judge(
    rule: PatrolRule,
    checks: _Checks,
    patrol: PatrolSummary,
    slot: _Slot | _Unplaced,
    last_counted_end: datetime | None,
) -> tuple[bool, list[str]]:
    """`_counts`' decision, with the reasons for it."""
    if isinstance(slot, _Unplaced):
        return False, [slot.reason]
    ok = _counts(rule, checks, patrol, slot.note, last_counted_end)
    if patrol.disqualified:
        return ok, [f"disqualified: {patrol.disqualified}"]
    if slot.note:
        return ok, [slot.note]
    reasons = _threshold_reasons(checks, patrol)
    gap_h = _gap_hours(patrol, last_counted_end)
    if _meets(checks, patrol) and _too_soon(rule, gap_h):
        assert rule.min_gap_hours is not None and gap_h is not None
        reasons.append(f"within {_num(rule.min_gap_hours)} h of a counted patrol ({_num(gap_h)} h after it)")
    reasons.append(f"counted for {slot.window.label}" if ok else f"not counted for {slot.window.label}")
    return ok, reasons


def evaluate(
    rule: PatrolRule,
    patrols: Iterable[PatrolSummary],
    first_day: date,
    last_day: date,
    *,
    areas: Sequence[str] | None = None,
    timezone: str | None = None,
    holidays: frozenset[date] = frozenset(),
    makeup_workdays: frozenset[date] = frozenset(),
) -> Verdict:
    """Judge one chief's patrols against `rule` over the local dates `first_day..last_day` (inclusive).

    A patrol belongs to the period of its local start date. Only periods wholly inside the range, in
    an active month and with the rule in force require patrols. Per-area rules need `areas` (the
    chief's assigned areas) so that an area never patrolled shows up as missing. Local dates are the
    city's (kernel.city) unless `timezone` is given; `WORKING_DAY` periods skip `holidays` and add
    `makeup_workdays` (the caller passes the city's). Linear in patrols.
    """
    area_keys = _area_keys(rule, areas)
    tz = city.current().tz if timezone is None else ZoneInfo(timezone)
    windows, notes, starts = _windows(rule, first_day, last_day, holidays, makeup_workdays)
    checks = _thresholds(rule)
    slots = {
        (i, area): _Slot(window, area, 0 if note else rule.min_count, note)
        for i, (window, note) in enumerate(zip(windows, notes, strict=True))
        for area in area_keys
    }
    last_end: dict[str | None, datetime] = {}
    judgements = []
    for patrol, index, local_day, area in _placed(rule, patrols, windows, starts, tz):
        slot = _place(rule, slots, windows, index, local_day, area)
        counted, reasons = _judge(rule, checks, patrol, slot, last_end.get(area))
        if counted and isinstance(slot, _Slot):
            slot.counted.append(patrol.patrol_id)
            last_end[area] = patrol.ended_at
        label = slot.window.label if isinstance(slot, _Slot) else None
        judgements.append(PatrolJudgement(patrol.patrol_id, counted, label, tuple(reasons)))
    periods = tuple(
        PeriodResult(
            s.window.label,
            s.window.first_day,
            s.window.last_day,
            s.area_id,
            s.required,
            len(s.counted),
            tuple(s.counted),
            s.note,
        )
        for s in slots.values()
    )
    return Verdict(rule.code, periods, tuple(judgements))


@dataclass(frozen=True, slots=True)
class AreaCount:
    """What a rule required and what was done (capped at required per period), summed over the
    periods of one area (None: the chief's areas together)."""

    area_id: str | None
    required: int
    done: int


def count(
    rule: PatrolRule,
    patrols: Iterable[PatrolSummary],
    first_day: date,
    last_day: date,
    *,
    areas: Sequence[str] | None = None,
    timezone: str | None = None,
    holidays: frozenset[date] = frozenset(),
    makeup_workdays: frozenset[date] = frozenset(),
) -> tuple[AreaCount, ...]:
    """`evaluate`'s counts without its explanations, for figures over many chiefs (the office's): per
    area key, the sum over the periods of required and of done capped at required. The same arguments,
    the same placement and decision (`_placed`, `_counts`); `tests/patrols/test_counting.py` holds the
    two paths to the same figures."""
    area_keys = _area_keys(rule, areas)
    tz = city.current().tz if timezone is None else ZoneInfo(timezone)
    windows, notes, starts = _windows(rule, first_day, last_day, holidays, makeup_workdays)
    checks = _thresholds(rule)
    assessed = set(area_keys)
    done: dict[tuple[int, str | None], int] = defaultdict(int)
    last_end: dict[str | None, datetime] = {}
    for patrol, index, local_day, area in _placed(rule, patrols, windows, starts, tz):
        if index < 0 or local_day > windows[index].last_day or area not in assessed:
            continue
        if _counts(rule, checks, patrol, notes[index], last_end.get(area)):
            done[index, area] += 1
            last_end[area] = patrol.ended_at
    required = [0 if note else rule.min_count for note in notes]
    return tuple(
        AreaCount(
            area,
            sum(required),
            sum(min(done.get((i, area), 0), need) for i, need in enumerate(required)),
        )
        for area in area_keys
    )


# --- loading --------------------------------------------------------------------------------------


def _enum(kind: type[enum.StrEnum], value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(kind)
        raise invalid(f"{name} must be one of {allowed}, got {value!r}.", name) from None


def _optional_date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be an ISO date, got {value!r}.", name) from None


def _months(value: Any) -> frozenset[int]:
    if value is None:
        return ALL_MONTHS
    months = frozenset(value) if isinstance(value, list) else frozenset()
    if not months or not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
        raise invalid(
            f"active_months must be a non-empty list of months 1-12, got {value!r}.", "active_months"
        )
    return months


def _optional_positive(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is not None and (not isinstance(value, int | float) or value < 0):
        raise invalid(f"{name} must be a non-negative number, got {value!r}.", name)
    return value


def rule_from_dict(raw: dict[str, Any]) -> PatrolRule:
    """Build a rule from its JSON form, naming the field when something is wrong."""
    for name in ("code", "source", "region_code"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise invalid(f"{name} is required.", name)
    min_count = raw.get("min_count")
    if not isinstance(min_count, int) or min_count < 1:
        raise invalid(f"min_count must be a positive integer, got {min_count!r}.", "min_count")
    area_kind = raw.get("area_kind")
    return PatrolRule(
        code=raw["code"],
        source=raw["source"],
        region_code=raw["region_code"],
        chief_level=_enum(ChiefLevel, raw.get("chief_level"), "chief_level"),
        chief_kind=_enum(ChiefKind, raw.get("chief_kind"), "chief_kind"),
        period=_enum(Period, raw.get("period"), "period"),
        min_count=min_count,
        area_kind=None if area_kind is None else _enum(AreaKind, area_kind, "area_kind"),
        count_scope=_enum(CountScope, raw.get("count_scope", "PER_CHIEF"), "count_scope"),
        active_months=_months(raw.get("active_months")),
        min_duration_min=_optional_positive(raw, "min_duration_min"),
        min_distance_km=_optional_positive(raw, "min_distance_km"),
        min_coverage=_optional_positive(raw, "min_coverage"),
        min_gap_hours=_optional_positive(raw, "min_gap_hours"),
        effective_from=_optional_date(raw.get("effective_from"), "effective_from"),
        effective_to=_optional_date(raw.get("effective_to"), "effective_to"),
    )


def load_rules(path: Path = SEED_RULES_PATH) -> list[PatrolRule]:
    """Load rules from a JSON file shaped `{"rules": [...]}`; codes must be unique."""
    rules = [rule_from_dict(raw) for raw in json.loads(path.read_text(encoding="utf-8"))["rules"]]
    codes = [r.code for r in rules]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise invalid(f"Duplicate rule codes: {', '.join(duplicates)}.", "code")
    return rules
