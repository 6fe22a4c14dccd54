"""`patrolCompliance`: which chiefs patrolled as their rules require, and why each patrol counted.

Three queries whatever the size (assignments in force during the range, the rule rows, the finished
patrols in the range), then pure evaluation with `patrols.rules.evaluate`. The assignments in force
at the time decide who was responsible; a delegate's patrols count for the chief who delegated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any, TypeVar

from tortoise.expressions import Q

from kernel import city
from kernel.errors import invalid
from kernel.rawsql import as_datetime, placeholders
from patrols.access import Viewer
from patrols.models import ChiefAssignment, Patrol, PatrolRuleRow, PatrolStatus
from patrols.rules import (
    AreaCount,
    AreaKind,
    ChiefKind,
    ChiefLevel,
    CountScope,
    PatrolRule,
    PatrolSummary,
    Verdict,
    count,
    evaluate,
    rule_applies,
    rule_from_dict,
)

MAX_RANGE_DAYS = 731
# Stored values to members by dict: an enum call per value took a tenth of a city's office figures.
_LEVELS = {m.value: m for m in ChiefLevel}
_KINDS = {m.value: m for m in ChiefKind}
_AREA_KINDS = {m.value: m for m in AreaKind}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    chief_id: int
    area_id: int
    level: ChiefLevel
    kind: ChiefKind
    area_kind: AreaKind
    region_code: str
    valid_from: date
    valid_to: date | None

    @property
    def chief_level(self) -> ChiefLevel:
        return self.level

    @property
    def chief_kind(self) -> ChiefKind:
        return self.kind

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class ChiefVerdict:
    chief_id: int
    rule: PatrolRule
    assignments: tuple[AssignmentRow, ...]
    first_day: date  # the assessed range, clipped to the assignments
    last_day: date
    verdict: Verdict
    delegated: frozenset[int]  # patrols recorded by an assistant


async def load_rules() -> list[PatrolRule]:
    return [rule_from_dict(d) for (d,) in await PatrolRuleRow.all().values_list("definition")]


def _most_local(rules: list[PatrolRule], assignment: AssignmentRow, on: date) -> list[PatrolRule]:
    """The applicable rules of the most local jurisdiction: a county's own rule replaces the province's."""
    applicable = [r for r in rules if rule_applies(r, assignment, on)]
    if not applicable:
        return []
    longest = max(len(r.region_prefix) for r in applicable)
    return [r for r in applicable if len(r.region_prefix) == longest]


async def _assignments(
    first_day: date, last_day: date, chief_id: int | None, area_id: int | None, region: str | None
) -> list[AssignmentRow]:
    query = ChiefAssignment.filter(Q(valid_to=None) | Q(valid_to__gte=first_day), valid_from__lte=last_day)
    if chief_id is not None:
        query = query.filter(chief_id=chief_id)
    if area_id is not None:
        query = query.filter(area_id=area_id)
    if region is not None:
        query = query.filter(area__admin_region__startswith=region)
    rows = await query.values_list(
        "chief_id", "area_id", "level", "kind", "area__kind", "area__admin_region", "valid_from", "valid_to"
    )
    return [
        AssignmentRow(c, a, _LEVELS[lv], _KINDS[k], _AREA_KINDS[ak], rg, vf, vt)
        for c, a, lv, k, ak, rg, vf, vt in rows
    ]


async def _patrols(
    first_day: date, last_day: date, chiefs: set[int], areas: set[int]
) -> dict[int, list[dict[str, Any]]]:
    here = city.current()
    start = here.start_of(first_day)
    end = here.start_of(last_day + timedelta(days=1))
    conn = Patrol._meta.db
    chief_marks = placeholders(conn, len(chiefs), start=4)
    area_marks = placeholders(conn, len(areas), start=4 + len(chiefs))
    first, second, third = placeholders(conn, 3)
    _, raw = await conn.execute_query(
        'SELECT "id", "chief_id", "counted_for_id", "area_id", "started_at", "finished_at", "distance_m", '
        # Social supervisors' patrols are counted apart, never for a chief (issue 17 item 7).
        f'"coverage", "duration_s" FROM "patrols" WHERE "status" = {first} AND "started_at" >= {second} '
        'AND "by_volunteer" = FALSE '
        f'AND "started_at" < {third} AND "counted_for_id" IN ({", ".join(chief_marks)}) '
        f'AND "area_id" IN ({", ".join(area_marks)})',
        [PatrolStatus.FINISHED.value, start.astimezone(UTC), end.astimezone(UTC), *chiefs, *areas],
    )
    keys = ("id", "chief_id", "counted_for_id", "area_id", "started_at", "finished_at", "distance_m",
            "coverage", "duration_s")  # fmt: skip
    rows = []
    for values in raw:
        row = dict(zip(keys, values, strict=True))
        row["started_at"] = as_datetime(row["started_at"])
        row["finished_at"] = as_datetime(row["finished_at"])
        rows.append(row)
    by_chief: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_chief[row["counted_for_id"]].append(row)
    return by_chief


async def assignments_in(first_day: date, last_day: date, region: str | None) -> list[AssignmentRow]:
    """Assignments in force at some time during the local dates `first_day..last_day`, of areas whose
    division code starts with `region` (None: everywhere)."""
    return await _assignments(first_day, last_day, None, None, region)


def check_range(first_day: date, last_day: date) -> None:
    if last_day < first_day:
        raise invalid("The period ends before it starts.", "to")
    if (last_day - first_day).days > MAX_RANGE_DAYS:
        raise invalid(f"Assess at most {MAX_RANGE_DAYS} days at once.", "to")


@dataclass(frozen=True, slots=True)
class ChiefCount:
    """`ChiefVerdict`'s counts without the explanations (`patrols.rules.count`)."""

    chief_id: int
    rule: PatrolRule
    assignments: tuple[AssignmentRow, ...]
    areas: tuple[AreaCount, ...]


# One chief's rule: the rule, the assignments it applies to, the chief's patrols in the range.
_Plan = tuple[PatrolRule, int, list[AssignmentRow], list[dict[str, Any]]]


async def _plan(
    viewer: Viewer,
    first_day: date,
    last_day: date,
    chief_id: int | None,
    area_id: int | None,
    region: str | None,
    loaded: list[AssignmentRow] | None,
) -> list[_Plan]:
    """What to judge, per (chief, rule) the viewer may assess, in chief and rule order."""
    check_range(first_day, last_day)
    if loaded is None:
        loaded = await _assignments(first_day, last_day, chief_id, area_id, region)
    assignments = [a for a in loaded if viewer.sees_chief(a.chief_id, [(a.level, a.region_code, a.kind)])]
    if not assignments:
        return []
    rules = await load_rules()
    groups: dict[tuple[int, str], list[AssignmentRow]] = defaultdict(list)
    by_code = {r.code: r for r in rules}
    # A region's thousands of assignments share a few (level, kind, division, day): choose once for each.
    chosen: dict[tuple[ChiefLevel, ChiefKind, AreaKind, str, date], list[PatrolRule]] = {}
    for a in assignments:
        on = min(max(first_day, a.valid_from), last_day)
        key = (a.level, a.kind, a.area_kind, a.region_code, on)
        if key not in chosen:
            chosen[key] = _most_local(rules, a, on)
        for rule in chosen[key]:
            groups[a.chief_id, rule.code].append(a)
    patrols = await _patrols(
        first_day, last_day, {a.chief_id for a in assignments}, {a.area_id for a in assignments}
    )
    return [
        (by_code[code], chief, rows, patrols.get(chief, [])) for (chief, code), rows in sorted(groups.items())
    ]


async def compliance(
    viewer: Viewer,
    first_day: date,
    last_day: date,
    *,
    chief_id: int | None = None,
    area_id: int | None = None,
    region: str | None = None,
    loaded: list[AssignmentRow] | None = None,
) -> list[ChiefVerdict]:
    """Verdicts per (chief, rule) for the chiefs the viewer may assess (themselves, those they
    supervise; everyone for overseers), over the local dates `first_day..last_day`. `loaded`: the
    assignments of the chiefs, areas or region asked for, when the caller has read them already
    (`assignments_in`)."""
    plans = await _plan(viewer, first_day, last_day, chief_id, area_id, region, loaded)
    return [_judge(rule, chief, rows, patrols, first_day, last_day) for rule, chief, rows, patrols in plans]


async def patrol_counts(
    viewer: Viewer, first_day: date, last_day: date, *, region: str | None, loaded: list[AssignmentRow]
) -> list[ChiefCount]:
    """`compliance`'s required and done counts of the region's chiefs, without explaining each patrol:
    the office's figures over a city's thousands of chiefs need only the counts."""
    plans = await _plan(viewer, first_day, last_day, None, None, region, loaded)
    counts = []
    for rule, chief, rows, patrols in plans:
        figures, *_ = _apply(count, rule, chief, rows, patrols, first_day, last_day)
        counts.append(ChiefCount(chief, rule, tuple(rows), figures))
    return counts


def _clip(assignments: list[AssignmentRow], first_day: date, last_day: date) -> tuple[date, date]:
    """The assessed range clipped to the assignments."""
    first = max(first_day, min(a.valid_from for a in assignments))
    ends = [a.valid_to for a in assignments]
    last = last_day if None in ends else min(last_day, max(e for e in ends if e is not None))
    return first, last


def _summaries(
    chief_id: int, assignments: list[AssignmentRow], patrols: list[dict[str, Any]]
) -> tuple[list[PatrolSummary], set[int]]:
    """The patrols made under the assignments (the area assigned on the patrol's day), and which of
    them an assistant recorded."""
    summaries = []
    delegated = set()
    tz = city.current().tz
    for p in patrols:
        day = p["started_at"].astimezone(tz).date()
        if not any(a.area_id == p["area_id"] and a.covers(day) for a in assignments):
            continue
        if p["chief_id"] != chief_id:
            delegated.add(p["id"])
        summaries.append(
            PatrolSummary(
                patrol_id=str(p["id"]),
                chief_id=str(chief_id),
                area_id=str(p["area_id"]),
                started_at=p["started_at"],
                ended_at=p["finished_at"],
                distance_m=p["distance_m"] or 0.0,
                coverage=p["coverage"],
                duration_s=p["duration_s"],
            )
        )
    return summaries, delegated


def _per_area(rule: PatrolRule, assignments: list[AssignmentRow]) -> list[str] | None:
    return sorted({str(a.area_id) for a in assignments}) if rule.count_scope is CountScope.PER_AREA else None


def _judge(
    rule: PatrolRule,
    chief_id: int,
    assignments: list[AssignmentRow],
    patrols: list[dict[str, Any]],
    first_day: date,
    last_day: date,
) -> ChiefVerdict:
    verdict, first, last, delegated = _apply(
        evaluate, rule, chief_id, assignments, patrols, first_day, last_day
    )
    return ChiefVerdict(chief_id, rule, tuple(assignments), first, last, verdict, frozenset(delegated))


def _apply(
    judge: Callable[..., T],
    rule: PatrolRule,
    chief_id: int,
    assignments: list[AssignmentRow],
    patrols: list[dict[str, Any]],
    first_day: date,
    last_day: date,
) -> tuple[T, date, date, set[int]]:
    """`judge` (rules.evaluate, or rules.count for figures only) over a chief's patrols under their
    assignments, in the range clipped to them, with the city's calendar: one place for both paths'
    arguments. Also returns the clipped range and the patrols an assistant recorded."""
    first, last = _clip(assignments, first_day, last_day)
    summaries, delegated = _summaries(chief_id, assignments, patrols)
    here = city.current()
    result = judge(
        rule,
        summaries,
        first,
        last,
        areas=_per_area(rule, assignments),
        timezone=here.timezone,
        holidays=here.holidays,
        makeup_workdays=here.workdays,
    )
    return result, first, last, delegated


async def upsert_rules(raw_rules: list[dict[str, Any]]) -> int:
    """Store rules (validated by `rule_from_dict` first) by code; returns how many were new."""
    created = 0
    for raw in raw_rules:
        rule = rule_from_dict(raw)
        values = {
            "region_code": rule.region_code,
            "chief_level": rule.chief_level,
            "chief_kind": rule.chief_kind,
            "source": rule.source,
            "definition": raw,
        }
        row, new = await PatrolRuleRow.get_or_create(code=rule.code, defaults=values)
        if not new:
            await row.update_from_dict(values).save()
        created += new
    return created
