"""Routing a case to a department: area x category, as data.

National law mostly names a *kind* of department (生态环境, 城管, 公安 ...) and leaves the concrete
assignment to each city (Noise Law Arts. 77, 81, 82; Air Law Arts. 118, 119). So the shipped national
table routes to department kinds, the concrete department is the one of that kind whose jurisdiction
covers the point (the most local one if several do), and a city adds override rules citing its own
regulation; such a rule may also name one concrete department.

Which rule wins, when several match (first difference decides):
 1. a CITY override beats a NATIONAL default;
 2. a sub-category (`noise.construction`) beats a group wildcard (`noise.*`);
 3. a rule for a jurisdiction beats one for anywhere, and a smaller jurisdiction a larger one;
 4. a rule with a local time window (e.g. night 22:00-06:00) beats one without;
 5. a rule with evidence conditions (e.g. measured_db >= 70) beats one without;
 6. higher `priority`;
 7. the smaller rule id (so the answer never depends on load order).
If the winner names a kind with no department covering the point, or nothing matches, the case goes to
TRIAGE (`department_code` None) and the reason says why.

Rule files (`routing_national.json`, `routing_city_<code>.json`):

    {"scope": "NATIONAL" | "CITY",
     "city": "310000",                       # CITY files: default jurisdiction of their rules
     "department_kinds": {"urban_management": {"zh-CN": "...", "en": "..."}},   # optional in city files
     "rules": [{"id": "cn.noise.construction.night", "category": "noise.construction" | "noise.*",
                "department_kind": "urban_management"  |  "department": "<concrete code>",
                "jurisdiction": "310101",  # optional
                "window": {"from": "22:00", "to": "06:00", "timezone": "Asia/Shanghai"},  # optional
                "when": [{"field": "measured_db", "op": ">=", "value": 70}],  # optional, all must hold
                "priority": 0, "source": "the law or regulation, article"}]}
"""

from __future__ import annotations

import enum
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from kernel import city
from kernel.errors import invalid
from reports.categories import CategoryCatalog, Names, parse_names
from reports.datafile import DataFileError, expect, only_keys, read_json, require, where

# (longitude, latitude) in WGS-84, the canonical storage system.
LonLat = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    name: str
    geometry: BaseGeometry

    @classmethod
    def from_geojson(cls, code: str, name: str, geojson: Mapping[str, Any]) -> Jurisdiction:
        """Accepts a (Multi)Polygon geometry or a Feature holding one."""
        geometry_json = geojson.get("geometry") if geojson.get("type") == "Feature" else geojson
        try:
            geometry = shape(geometry_json)
        except (AttributeError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
            raise ValueError(f"jurisdiction {code}: not a GeoJSON geometry ({exc})") from None
        if geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.is_empty:
            raise ValueError(f"jurisdiction {code}: must be a Polygon or MultiPolygon")
        if not geometry.is_valid:
            raise ValueError(f"jurisdiction {code}: invalid polygon ({shapely.is_valid_reason(geometry)})")
        lon_min, lat_min, lon_max, lat_max = geometry.bounds
        if lon_min < -180 or lon_max > 180 or lat_min < -90 or lat_max > 90:
            raise ValueError(f"jurisdiction {code}: coordinates must be WGS-84 longitude, latitude")
        return cls(code, name, geometry)


class JurisdictionIndex:
    """Point-in-polygon over many jurisdictions: an STRtree narrows by bounding box, then prepared
    geometries answer the exact test quickly."""

    def __init__(self, jurisdictions: Iterable[Jurisdiction]) -> None:
        self._items = list(jurisdictions)
        self._by_code = {j.code: j for j in self._items}
        if len(self._by_code) != len(self._items):
            raise ValueError("duplicate jurisdiction code")
        for j in self._items:
            shapely.prepare(j.geometry)
        self._tree = STRtree([j.geometry for j in self._items])

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def containing(self, point: LonLat) -> list[Jurisdiction]:
        """Jurisdictions covering the point (borders included), smallest first."""
        pt = shapely.Point(point)
        hits = [self._items[i] for i in self._tree.query(pt) if self._items[i].geometry.intersects(pt)]
        return sorted(hits, key=lambda j: (j.geometry.area, j.code))


def load_jurisdictions(source: str | Path) -> list[Jurisdiction]:
    """A GeoJSON FeatureCollection whose features carry `code` and `name` properties."""
    raw = expect(read_json(source), dict)
    found = []
    for i, feature in enumerate(require(raw, "features", list)):
        props = require(expect(feature, dict, "features", i), "properties", dict, "features", i)
        code = require(props, "code", str, "features", i, "properties")
        try:
            found.append(Jurisdiction.from_geojson(code, str(props.get("name", code)), feature))
        except ValueError as exc:
            raise DataFileError(f"{where('features', i)}: {exc}") from None
    return found


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    kind: str
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily local-time window; `end <= start` means it runs overnight (22:00-06:00)."""

    start: time
    end: time
    timezone: str = field(default_factory=lambda: city.current().timezone)  # the city's unless given
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        if self.start == self.end:
            raise ValueError("a window needs a start different from its end")

    def contains(self, at: datetime) -> bool:
        if at.tzinfo is None:
            raise ValueError("routing time must be timezone-aware")
        local = at.astimezone(self.tz).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
OPS = (*_ORDERING, "==", "!=", "in")


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: float | str | bool | tuple[str | float, ...]

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        if self.op in _ORDERING and not _is_number(self.value):
            raise ValueError(f"{self.op} needs a number")
        if self.op == "in" and not isinstance(self.value, tuple):
            raise ValueError("in needs a list")

    def holds(self, evidence: Mapping[str, Any]) -> bool:
        """A missing or mistyped value never matches: the rule then simply does not apply."""
        if self.field not in evidence:
            return False
        actual = evidence[self.field]
        if self.op in _ORDERING:
            return _is_number(actual) and _ORDERING[self.op](actual, self.value)
        if self.op == "in":
            return isinstance(self.value, tuple) and actual in self.value
        same = type(actual) is type(self.value) or (_is_number(actual) and _is_number(self.value))
        return (same and actual == self.value) == (self.op == "==")

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class RuleScope(enum.StrEnum):
    NATIONAL = "NATIONAL"
    CITY = "CITY"


@dataclass(frozen=True, slots=True)
class RoutingRule:
    id: str
    category: str  # a code, or "<group>.*"
    source: str
    department_kind: str | None = None
    department: str | None = None
    scope: RuleScope = RuleScope.NATIONAL
    jurisdiction: str | None = None
    window: TimeWindow | None = None
    conditions: tuple[Condition, ...] = ()
    priority: int = 0

    def __post_init__(self) -> None:
        if (self.department_kind is None) == (self.department is None):
            raise ValueError(f"rule {self.id}: give exactly one of department_kind or department")
        if self.scope is RuleScope.CITY and self.jurisdiction is None:
            raise ValueError(f"rule {self.id}: a city rule must name its jurisdiction")

    @property
    def is_group_rule(self) -> bool:
        return self.category.endswith(".*")

    def describe(self) -> str:
        parts = ["city override" if self.scope is RuleScope.CITY else "national default", self.category]
        if self.jurisdiction:
            parts.append(f"in {self.jurisdiction}")
        if self.window:
            parts.append(f"between {self.window}")
        parts.extend(f"when {c}" for c in self.conditions)
        return f"rule {self.id} ({', '.join(parts)}; source: {self.source})"


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    department_code: str | None
    rule_id: str | None
    reason: str

    @property
    def triage(self) -> bool:
        return self.department_code is None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    department_kinds: dict[str, Names]
    rules: tuple[RoutingRule, ...]


class Router:
    """Routing rules bound to the places and departments of one deployment; checked once, at start."""

    def __init__(
        self,
        catalog: CategoryCatalog,
        rules: Iterable[RoutingRule],
        jurisdictions: JurisdictionIndex,
        departments: Iterable[Department],
    ) -> None:
        self._catalog = catalog
        self._jurisdictions = jurisdictions
        self._departments = {d.code: d for d in departments}
        # (kind, jurisdiction) -> department code; two of a kind for one place is ambiguous.
        self._local: dict[tuple[str, str], str] = {}
        for dept in self._departments.values():
            if dept.jurisdiction not in jurisdictions:
                raise ValueError(f"department {dept.code}: unknown jurisdiction {dept.jurisdiction}")
            if (dept.kind, dept.jurisdiction) in self._local:
                raise ValueError(f"two {dept.kind} departments for {dept.jurisdiction}")
            self._local[dept.kind, dept.jurisdiction] = dept.code
        self._rules: dict[str, list[RoutingRule]] = defaultdict(list)
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id}")
            seen.add(rule.id)
            self._check(rule)
            self._rules[rule.category].append(rule)

    def route(
        self, point: LonLat, category: str, evidence: Mapping[str, Any], at: datetime
    ) -> RoutingDecision:
        """`evidence` should be the cleaned output of `validate_evidence`."""
        if category not in self._catalog:
            raise invalid("unknown category", "input", "categoryCode")
        places = self._jurisdictions.containing(point)
        winner = next(
            (
                rule
                for rule in self._candidates(category, places)
                if (rule.window is None or rule.window.contains(at))
                and all(c.holds(evidence) for c in rule.conditions)
            ),
            None,
        )
        if winner is None:
            return RoutingDecision(None, None, f"no routing rule covers {category} at this place and time")
        department = self._department_for(winner, places)
        if department is None:
            return RoutingDecision(
                None,
                winner.id,
                f"{winner.describe()} names a {winner.department_kind} department,"
                " but none covers this point",
            )
        return RoutingDecision(department, winner.id, f"{winner.describe()} -> {department}")

    def places_at(self, point: LonLat) -> list[Jurisdiction]:
        """Jurisdictions covering the point, smallest first (empty: the sea, or another country)."""
        return self._jurisdictions.containing(point)

    def handles(self, point: LonLat, category: str) -> bool:
        """Whether some department handles `category` here, at some hour, for some evidence."""
        return category in self._catalog and self._handled(category, self.places_at(point))

    def department_of_kind(self, point: LonLat, kind: str) -> str | None:
        """The most local department of `kind` whose jurisdiction covers the point, if any."""
        places = self._jurisdictions.containing(point)
        return next((self._local[kind, p.code] for p in places if (kind, p.code) in self._local), None)

    def categories_at(self, point: LonLat) -> list[str]:
        """Category codes some department handles here (at some hour, for some evidence), in
        catalog order: the list a reporting form offers at that point."""
        places = self._jurisdictions.containing(point)
        return [c.code for c in self._catalog if self._handled(c.code, places)]

    def _handled(self, category: str, places: Sequence[Jurisdiction]) -> bool:
        # Walk in precedence order: a rule that always applies hides every rule below it.
        for rule in self._candidates(category, places):
            if self._department_for(rule, places) is not None:
                return True
            if rule.window is None and not rule.conditions:
                return False
        return False

    def _candidates(self, category: str, places: Sequence[Jurisdiction]) -> list[RoutingRule]:
        """Rules for this category and place, best first; time and evidence not yet considered."""
        cat = self._catalog.get(category)
        assert cat is not None
        area = {j.code: j.geometry.area for j in places}
        rules = self._rules.get(category, []) + self._rules.get(f"{cat.group.lower()}.*", [])
        applicable = [r for r in rules if r.jurisdiction is None or r.jurisdiction in area]
        return sorted(applicable, key=lambda rule: _precedence(rule, area))

    def _department_for(self, rule: RoutingRule, places: Sequence[Jurisdiction]) -> str | None:
        if rule.department is not None:
            return rule.department
        # `places` is smallest first, so the most local department of that kind wins.
        kind = rule.department_kind or ""
        return next((self._local[kind, p.code] for p in places if (kind, p.code) in self._local), None)

    def _check(self, rule: RoutingRule) -> None:
        if rule.is_group_rule:
            group = rule.category.removesuffix(".*").upper()
            covered = [c for c in self._catalog if c.group == group]
        else:
            single = self._catalog.get(rule.category)
            covered = [single] if single else []
        if not covered:
            raise ValueError(f"rule {rule.id}: unknown category {rule.category}")
        if rule.jurisdiction is not None and rule.jurisdiction not in self._jurisdictions:
            raise ValueError(f"rule {rule.id}: unknown jurisdiction {rule.jurisdiction}")
        if rule.department is not None and rule.department not in self._departments:
            raise ValueError(f"rule {rule.id}: unknown department {rule.department}")
        for cond in rule.conditions:
            if not any(c.evidence.field(cond.field) for c in covered):
                raise ValueError(f"rule {rule.id}: no evidence field {cond.field} in {rule.category}")


def _precedence(
    rule: RoutingRule, area: Mapping[str, float]
) -> tuple[int, int, int, float, int, int, int, str]:
    return (
        rule.scope is not RuleScope.CITY,
        rule.is_group_rule,
        rule.jurisdiction is None,
        area.get(rule.jurisdiction or "", 0.0),
        rule.window is None,
        not rule.conditions,
        -rule.priority,
        rule.id,
    )


_RULE_KEYS = (
    "id",
    "category",
    "department_kind",
    "department",
    "jurisdiction",
    "window",
    "when",
    "priority",
    "source",
)


def load_routing_rules(*sources: str | Path) -> RoutingTable:
    """Load and merge rule files; with no argument, the shipped national table."""
    kinds: dict[str, Names] = {}
    rules: list[RoutingRule] = []
    for source in sources or ("routing_national.json",):
        raw = expect(read_json(source), dict)
        only_keys(raw, ("scope", "city", "department_kinds", "rules", "name"))
        try:
            scope = RuleScope(raw.get("scope"))
        except ValueError:
            raise DataFileError(f"{source}: scope must be NATIONAL or CITY") from None
        city = raw.get("city") if scope is RuleScope.CITY else None
        if scope is RuleScope.CITY and not isinstance(city, str):
            raise DataFileError(f"{source}: a CITY file names its city jurisdiction code")
        for code, names in expect(raw.get("department_kinds", {}), dict, "department_kinds").items():
            kinds[code] = parse_names(expect(names, dict, "department_kinds", code), "department_kinds", code)
        for i, item in enumerate(require(raw, "rules", list)):
            rules.append(parse_rule(item, scope, city, "rules", i))
    for rule in rules:
        if rule.department_kind is not None and rule.department_kind not in kinds:
            raise DataFileError(f"rule {rule.id}: unknown department kind {rule.department_kind}")
    return RoutingTable(kinds, tuple(rules))


def parse_rule(raw: Any, scope: RuleScope, city: str | None, *path: str | int) -> RoutingRule:
    """One rule in its file form; `city` is the default jurisdiction of a CITY rule."""
    expect(raw, dict, *path)
    only_keys(raw, _RULE_KEYS, *path)
    try:
        return RoutingRule(
            id=require(raw, "id", str, *path),
            category=require(raw, "category", str, *path),
            source=require(raw, "source", str, *path),
            department_kind=expect(raw.get("department_kind"), (str, type(None)), *path, "department_kind"),
            department=expect(raw.get("department"), (str, type(None)), *path, "department"),
            scope=scope,
            jurisdiction=expect(raw.get("jurisdiction", city), (str, type(None)), *path, "jurisdiction"),
            window=_window(raw["window"], *path, "window") if "window" in raw else None,
            conditions=tuple(
                _condition(c, *path, "when", i)
                for i, c in enumerate(expect(raw.get("when", []), list, *path))
            ),
            priority=expect(raw.get("priority", 0), int, *path, "priority"),
        )
    except DataFileError:
        raise
    except ValueError as exc:
        raise DataFileError(f"{where(*path)}: {exc}") from None


def _window(raw: Any, *path: str | int) -> TimeWindow:
    expect(raw, dict, *path)
    only_keys(raw, ("from", "to", "timezone"), *path)
    return TimeWindow(
        time.fromisoformat(require(raw, "from", str, *path)),
        time.fromisoformat(require(raw, "to", str, *path)),
        expect(raw.get("timezone", city.current().timezone), str, *path, "timezone"),
    )


def _condition(raw: Any, *path: str | int) -> Condition:
    expect(raw, dict, *path)
    only_keys(raw, ("field", "op", "value"), *path)
    if "value" not in raw:
        raise DataFileError(f"{where(*path, 'value')}: missing")
    value = raw["value"]
    return Condition(
        require(raw, "field", str, *path),
        require(raw, "op", str, *path),
        tuple(value) if isinstance(value, list) else value,
    )
