"""The chief office's figures (河长办 / 林长办): per level, region and area, for a 旬, month, quarter
or year in the city's timezone; and the assessment (考核) scored on them.

What is counted, for the areas in the region asked for and the period's local dates:
- patrols required and done: the counts of the patrol rules' verdicts (`patrols.compliance.patrol_counts`,
  the same decisions without the per-patrol reasons), a rule that counts per area on that area, one
  that counts a chief's areas together on the chief's first area; done is capped at required per
  period, so the patrol rate (巡河率/巡林率) is at most 1;
- problems found: observations recorded on chiefs' patrols started in the period (social supervisors'
  patrols are counted apart, `volunteerPatrols`);
- handed off: those handed off as a case; closed: of those, the cases now CLOSED; closed on time: of
  those, resolved by their resolution deadline (or without one);
- handled on the spot (现场处理): observations with `handled_on_spot_at`; solved = closed + handled on
  the spot;
- complaints: residents' cases created in the period located in the area's bounding box widened by
  about 100 m (`COMPLAINT_BUFFER_DEG`), merged and rejected cases left out.

Each count comes from one GROUP BY query per kind (problems by chief and area, complaints by position,
matched to the areas through a grid); the rows are then summed into the groups asked for. The chiefs
counted are those the viewer may assess (`patrols.access.Viewer.sees_chief`): overseers (admins, the
river chief office) all, a chief themselves and those they supervise; complaints only of the areas
those chiefs hold (overseers: every area).
"""

from __future__ import annotations

import enum
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise import connections

from kernel import city
from kernel.errors import invalid
from kernel.limits import MAX_DATE, MIN_DATE
from kernel.rawsql import fetch
from patrols.access import Viewer
from patrols.assessment import Assessment, Method, Metric, assess, method_from_dict, shipped_method
from patrols.compliance import AssignmentRow, assignments_in, patrol_counts
from patrols.models import OfficeAssessmentMethodRow
from patrols.rules import ChiefLevel, Period, PeriodWindow, split_periods
from reports.lifecycle import Status
from reports.models import ReportSource

OFFICE_PERIODS = (Period.DEKAD, Period.MONTH, Period.QUARTER, Period.YEAR)
CITY_SCOPE = "city"
COMPLAINT_BUFFER_DEG = 0.001  # about 110 m north-south, 95 m east-west at 30° N
GRID_DEG = 0.01  # the cells complaints are matched to areas through
_REGION = re.compile(r"^\d{2,12}$")
_LABELS = (
    (re.compile(r"^(\d{4})-(\d{2})-D([1-3])$"), Period.DEKAD),
    (re.compile(r"^(\d{4})-Q([1-4])$"), Period.QUARTER),
    (re.compile(r"^(\d{4})-(\d{2})$"), Period.MONTH),
    (re.compile(r"^(\d{4})$"), Period.YEAR),
)


class OfficeDimension(enum.StrEnum):
    AREA = "AREA"
    REGION = "REGION"
    LEVEL = "LEVEL"


def parse_period(label: str, *field: str) -> PeriodWindow:
    """`2026` (year), `2026-Q2` (quarter), `2026-05` (month) or `2026-05-D2` (旬: days 11-20)."""
    bad = invalid("Give the period as 2026, 2026-Q2, 2026-05 or 2026-05-D2 (旬 1-3).", *field)
    for pattern, period in _LABELS:
        match = pattern.match(label.strip())
        if match is None:
            continue
        year = int(match[1])
        if not MIN_DATE.year <= year <= MAX_DATE.year:
            raise bad
        if period is Period.YEAR:
            first = date(year, 1, 1)
        elif period is Period.QUARTER:
            first = date(year, (int(match[2]) - 1) * 3 + 1, 1)
        else:
            month = int(match[2])
            if not 1 <= month <= 12:
                raise bad
            first = date(year, month, 1 if period is Period.MONTH else (int(match[3]) - 1) * 10 + 1)
        return split_periods(period, first, first)[0]
    raise bad


def check_region(region: str | None, *field: str) -> str | None:
    if region is not None and not _REGION.match(region):
        raise invalid("A region is a division code of 2 to 12 digits, e.g. 4101.", *field)
    return region


@dataclass
class Figures:
    """The counts of one group; the rates follow from them (None when there is nothing to divide)."""

    areas: int = 0
    patrols_required: int = 0
    patrols_done: int = 0
    problems_found: int = 0
    handed_off: int = 0
    handled_on_spot: int = 0
    closed: int = 0
    closed_on_time: int = 0
    complaints: int = 0

    def add(self, other: Figures) -> None:
        # Through the instance dicts: a city's grouping adds thousands of cells, where getattr and
        # setattr per count showed in the profile.
        mine, theirs = self.__dict__, other.__dict__
        for name in _COUNTS:
            mine[name] += theirs[name]

    @property
    def solved(self) -> int:
        return self.closed + self.handled_on_spot

    @property
    def patrol_rate(self) -> float | None:
        return _rate(self.patrols_done, self.patrols_required)

    @property
    def closure_rate(self) -> float | None:
        return _rate(self.solved, self.handed_off + self.handled_on_spot)

    @property
    def on_time_closure_rate(self) -> float | None:
        return _rate(self.closed_on_time, self.handed_off)

    @property
    def handoff_rate(self) -> float | None:
        return _rate(self.handed_off, self.problems_found)

    @property
    def complaint_share(self) -> float | None:
        return _rate(self.complaints, self.complaints + self.problems_found)

    def metrics(self) -> dict[Metric, float | None]:
        return {
            Metric.PATROL_RATE: self.patrol_rate,
            Metric.CLOSURE_RATE: self.closure_rate,
            Metric.ON_TIME_CLOSURE_RATE: self.on_time_closure_rate,
            Metric.HANDOFF_RATE: self.handoff_rate,
            Metric.COMPLAINT_SHARE: self.complaint_share,
        }


_COUNTS = tuple(f for f in Figures.__dataclass_fields__ if f != "areas")


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@dataclass(frozen=True, slots=True)
class FigureRow:
    """One group: the dimensions asked for are set, the others None. The total row has none set."""

    area_id: int | None
    region: str | None
    level: ChiefLevel | None
    figures: Figures
    assessment: Assessment


@dataclass(frozen=True, slots=True)
class OfficeReport:
    window: PeriodWindow
    period: Period
    method: Method
    rows: tuple[FigureRow, ...]
    total: FigureRow


@dataclass(frozen=True, slots=True)
class _AreaInfo:
    region: str
    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float


# --- the assessment method ----------------------------------------------------------------------------


async def current_method() -> Method:
    row = await OfficeAssessmentMethodRow.get_or_none(scope=CITY_SCOPE)
    return shipped_method() if row is None else method_from_dict(row.definition)


async def replace_method(raw: dict[str, Any], by_user_id: int) -> Method:
    """Check `raw` whole, then store it as the city's method (replacing any before); storing the same
    method again changes nothing."""
    method = method_from_dict(raw, "input")
    definition = method.to_dict()
    row = await OfficeAssessmentMethodRow.get_or_none(scope=CITY_SCOPE)
    if row is None:
        await OfficeAssessmentMethodRow.get_or_create(
            scope=CITY_SCOPE, defaults={"definition": definition, "updated_by_id": by_user_id}
        )
    elif row.definition != definition:
        row.definition = definition
        row.updated_by_id = by_user_id
        await row.save(update_fields=["definition", "updated_by_id", "updated_at"])
    return method


async def reset_method() -> Method:
    """Back to the shipped method."""
    await OfficeAssessmentMethodRow.filter(scope=CITY_SCOPE).delete()
    return shipped_method()


# --- the figures ----------------------------------------------------------------------------------------


def _bounds(window: PeriodWindow) -> tuple[datetime, datetime]:
    here = city.current()
    start = here.start_of(window.first_day).astimezone(UTC)
    end = here.start_of(window.last_day + timedelta(days=1)).astimezone(UTC)
    return start, end


def _region_clause(region: str | None, column: str) -> tuple[str, list[Any]]:
    return ("", []) if region is None else (f" AND {column} LIKE {{}}", [f"{region}%"])


async def _areas(region: str | None) -> dict[int, _AreaInfo]:
    conn = connections.get("default")
    where, values = _region_clause(region, "admin_region")
    rows = await fetch(
        conn,
        f"SELECT id, admin_region, min_lat, min_lon, max_lat, max_lon FROM patrol_areas WHERE 1 = 1{where}",
        values,
    )
    return {r[0]: _AreaInfo(r[1], r[2], r[3], r[4], r[5]) for r in rows}


# The problem counts of chiefs' patrols started in the period, per (chief counted for, area).
_PROBLEM_MEASURES = (
    ("problems_found", "COUNT(o.id)"),
    ("handed_off", "COUNT(o.case_id)"),
    ("handled_on_spot", "SUM(CASE WHEN o.handled_on_spot_at IS NOT NULL THEN 1 ELSE 0 END)"),
    ("closed", f"SUM(CASE WHEN c.status = '{Status.CLOSED.value}' THEN 1 ELSE 0 END)"),
    (
        "closed_on_time",
        f"SUM(CASE WHEN c.status = '{Status.CLOSED.value}' AND (c.resolution_due_at IS NULL "
        "OR c.resolved_at <= c.resolution_due_at) THEN 1 ELSE 0 END)",
    ),
)


async def _problems(region: str | None, start: datetime, end: datetime) -> list[tuple[int, int, Figures]]:
    conn = connections.get("default")
    where, values = _region_clause(region, "a.admin_region")
    measures = ", ".join(sql for _, sql in _PROBLEM_MEASURES)
    rows = await fetch(
        conn,
        f"SELECT p.counted_for_id, p.area_id, {measures} FROM patrols p "
        "JOIN patrol_areas a ON a.id = p.area_id "
        "JOIN patrol_observations o ON o.patrol_id = p.id "
        "LEFT JOIN cases c ON c.id = o.case_id "
        f"WHERE p.started_at >= {{}} AND p.started_at < {{}} AND p.by_volunteer = FALSE{where} "
        "GROUP BY p.counted_for_id, p.area_id",
        [start, end, *values],
    )
    names = [name for name, _ in _PROBLEM_MEASURES]
    return [
        (r[0], r[1], Figures(**{n: int(v or 0) for n, v in zip(names, r[2:], strict=True)})) for r in rows
    ]


async def _complaints(start: datetime, end: datetime, areas: dict[int, _AreaInfo]) -> dict[int, int]:
    """Residents' cases created in the period in each area's bounding box (widened by the buffer).

    SQL counts the cases per position inside the box around all the areas (the created_at index finds
    the period's cases); the positions are then matched to the areas' boxes through a grid. A join of
    cases with areas on box overlap has no index to use on either engine and pairs every case of the
    period with every area (minutes for a city's quarter on SQLite)."""
    if not areas:
        return {}
    conn = connections.get("default")
    buffer = COMPLAINT_BUFFER_DEG
    box = [
        min(a.min_lat for a in areas.values()) - buffer,
        max(a.max_lat for a in areas.values()) + buffer,
        min(a.min_lon for a in areas.values()) - buffer,
        max(a.max_lon for a in areas.values()) + buffer,
    ]
    rows = await fetch(
        conn,
        "SELECT c.latitude, c.longitude, COUNT(*) FROM cases c "
        "WHERE c.created_at >= {} AND c.created_at < {} AND c.status NOT IN ({}, {}) "
        "AND c.latitude BETWEEN {} AND {} AND c.longitude BETWEEN {} AND {} "
        "AND EXISTS (SELECT 1 FROM reports r WHERE r.case_id = c.id AND r.source = {}) "
        "GROUP BY c.latitude, c.longitude",
        [start, end, Status.MERGED.value, Status.REJECTED.value, *box, ReportSource.RESIDENT.value],
    )
    if not rows:
        return {}
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for area_id, a in areas.items():
        for i in range(_cell(a.min_lat - buffer), _cell(a.max_lat + buffer) + 1):
            for j in range(_cell(a.min_lon - buffer), _cell(a.max_lon + buffer) + 1):
                grid[i, j].append(area_id)
    counts: dict[int, int] = defaultdict(int)
    for lat, lon, count in rows:
        for area_id in grid.get((_cell(lat), _cell(lon)), ()):
            a = areas[area_id]
            if (
                a.min_lat - buffer <= lat <= a.max_lat + buffer
                and a.min_lon - buffer <= lon <= a.max_lon + buffer
            ):
                counts[area_id] += int(count)
    return counts


def _cell(degrees: float) -> int:
    return math.floor(degrees / GRID_DEG)


def _level_of(held: list[AssignmentRow]) -> ChiefLevel:
    """The level of the latest of a chief's assignments on an area during the period."""
    return max(held, key=lambda a: a.valid_from).level


async def office_figures(
    viewer: Viewer,
    label: str,
    *,
    region: str | None = None,
    group_by: frozenset[OfficeDimension] = frozenset({OfficeDimension.AREA}),
    region_digits: int | None = None,
    method: Method | None = None,
) -> OfficeReport:
    """The figures of `label`'s period for the areas under `region`, grouped by `group_by`, with the
    assessment by `method` (default: the city's current one) of every row and of the total."""
    window = parse_period(label, "period")
    period = next(p for pattern, p in _LABELS if pattern.match(label.strip()))
    check_region(region, "region")
    if region_digits is not None and not 2 <= region_digits <= 12:
        raise invalid("regionDigits is from 2 to 12.", "regionDigits")
    method = method or await current_method()
    first, last = window.first_day, window.last_day
    start, end = _bounds(window)

    loaded = await assignments_in(first, last, region)
    visible = [a for a in loaded if viewer.sees_chief(a.chief_id, [(a.level, a.region_code, a.kind)])]
    areas = await _areas(region)
    held: dict[tuple[int, int], list[AssignmentRow]] = defaultdict(list)
    for a in visible:
        held[a.chief_id, a.area_id].append(a)
    # The counts per (area, level) before grouping; complaints are per area, added when grouped.
    cells: dict[tuple[int, ChiefLevel | None], Figures] = defaultdict(Figures)
    for (_, area_id), rows in held.items():
        cells.setdefault((area_id, _level_of(rows)), Figures())  # every visible assignment shows
    if viewer.overseer:  # and every area to the office, assigned or not
        assigned = {area_id for area_id, _ in cells}
        for area_id in areas.keys() - assigned:
            cells.setdefault((area_id, None), Figures())

    for counted in await patrol_counts(viewer, first, last, region=region, loaded=loaded):
        level = _level_of(list(counted.assignments))
        first_area = min(a.area_id for a in counted.assignments)
        for result in counted.areas:
            cell = cells[int(result.area_id) if result.area_id else first_area, level]
            cell.patrols_required += result.required
            cell.patrols_done += result.done

    for chief_id, area_id, counts in await _problems(region, start, end):
        holding = held.get((chief_id, area_id))
        if holding:
            cells[area_id, _level_of(holding)].add(counts)
        elif viewer.overseer:  # a patrol of someone no longer (or never) assigned there: no level
            cells[area_id, None].add(counts)

    complaints = await _complaints(start, end, areas)
    groups: dict[tuple[int | None, str | None, ChiefLevel | None], tuple[Figures, set[int]]] = {}
    total, total_areas = Figures(), set()
    for (area_id, cell_level), figures in cells.items():
        if area_id not in areas:
            continue
        code = areas[area_id].region
        key = (
            area_id if OfficeDimension.AREA in group_by else None,
            (code[:region_digits] if region_digits else code) if OfficeDimension.REGION in group_by else None,
            cell_level if OfficeDimension.LEVEL in group_by else None,
        )
        group, group_areas = groups.setdefault(key, (Figures(), set()))
        group.add(figures)
        group_areas.add(area_id)
        total.add(figures)
        total_areas.add(area_id)
    for group, group_areas in groups.values():
        group.areas = len(group_areas)
        group.complaints = sum(complaints.get(a, 0) for a in group_areas)
    total.areas = len(total_areas)
    total.complaints = sum(complaints.get(a, 0) for a in total_areas)

    def row(key: tuple[int | None, str | None, ChiefLevel | None], figures: Figures) -> FigureRow:
        return FigureRow(*key, figures, assess(method, figures.metrics()))

    ordered = sorted(
        groups.items(),
        key=lambda kv: (kv[0][1] or "", list(ChiefLevel).index(kv[0][2]) if kv[0][2] else 9, kv[0][0] or 0),
    )
    return OfficeReport(
        window, period, method, tuple(row(k, f) for k, (f, _) in ordered), row((None, None, None), total)
    )
