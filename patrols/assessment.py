"""The chief office's assessment (考核): a method as data, scored item by item with its explanation.

A method is a list of items, each a metric of the office figures (`patrols.office`) with a weight, a
target and its source. The weights add up to 100, so the score is out of 100. The shipped method
(`patrols/data/office_assessment.json`, sources in the file) is used until an admin stores the city's
own (`officeAssessmentMethodSet`); both are checked by `method_from_dict`.

Scoring an item: a metric where more is better (`AT_LEAST`) scores `weight × min(1, value / target)`;
one where less is better (`AT_MOST`) scores the full weight up to the target and `weight × target /
value` above it. A metric with nothing to measure (no patrol required, no problem to close) scores the
full weight and says so.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.errors import DomainError, DomainErrors, invalid

SHIPPED_METHOD_PATH = Path(__file__).parent / "data" / "office_assessment.json"
TOTAL_WEIGHT = 100.0
MAX_ITEMS = 20
MAX_TEXT = 2_000


class Metric(enum.StrEnum):
    """What an assessment item may score: the rates of the office figures."""

    PATROL_RATE = "PATROL_RATE"  # patrols done / required by the patrol rules
    CLOSURE_RATE = "CLOSURE_RATE"  # problems solved / problems to solve (handed off + handled on the spot)
    ON_TIME_CLOSURE_RATE = "ON_TIME_CLOSURE_RATE"  # handed-off problems closed by their deadline / handed off
    HANDOFF_RATE = "HANDOFF_RATE"  # problems handed off / problems found
    COMPLAINT_SHARE = "COMPLAINT_SHARE"  # residents' complaints / (complaints + problems found)


class Direction(enum.StrEnum):
    AT_LEAST = "AT_LEAST"  # more is better
    AT_MOST = "AT_MOST"  # less is better


# The direction each metric is scored in.
DIRECTIONS = {
    Metric.PATROL_RATE: Direction.AT_LEAST,
    Metric.CLOSURE_RATE: Direction.AT_LEAST,
    Metric.ON_TIME_CLOSURE_RATE: Direction.AT_LEAST,
    Metric.HANDOFF_RATE: Direction.AT_LEAST,
    Metric.COMPLAINT_SHARE: Direction.AT_MOST,
}


@dataclass(frozen=True, slots=True)
class MethodItem:
    metric: Metric
    weight: float
    target: float
    source: str

    @property
    def direction(self) -> Direction:
        return DIRECTIONS[self.metric]


@dataclass(frozen=True, slots=True)
class Method:
    code: str
    name: str
    source: str
    items: tuple[MethodItem, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "source": self.source,
            "items": [
                {"metric": i.metric.value, "weight": i.weight, "target": i.target, "source": i.source}
                for i in self.items
            ],
        }


def _text(raw: dict[str, Any], key: str, *field: str, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid(f"Give {key} as text.", *field, key)
    if len(value) > MAX_TEXT:
        raise invalid(f"{key} is longer than {MAX_TEXT} characters.", *field, key)
    return value.strip()


def _number(raw: dict[str, Any], key: str, *field: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"Give {key} as a number.", *field, key)
    return float(value)


def _item(raw: Any, *field: str) -> MethodItem:
    if not isinstance(raw, dict):
        raise invalid("Each item is an object with metric, weight, target and source.", *field)
    name = raw.get("metric")
    try:
        metric = Metric(str(name))
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise invalid(f"Unknown metric {name!r}; the metrics are {known}.", *field, "metric") from None
    weight = _number(raw, "weight", *field)
    if weight <= 0:
        raise invalid("A weight is more than 0.", *field, "weight")
    target = _number(raw, "target", *field)
    if not 0 < target <= 1:
        raise invalid("A target is a rate above 0 and at most 1.", *field, "target")
    return MethodItem(metric, weight, target, _text(raw, "source", *field, required=False))


def method_from_dict(raw: Any, *field: str) -> Method:
    """A method checked whole: every bad item is reported (with its index), then the weights' sum."""
    if not isinstance(raw, dict):
        raise invalid("A method is an object with code, name, source and items.", *field)
    code = _text(raw, "code", *field)
    name = _text(raw, "name", *field)
    source = _text(raw, "source", *field)
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise invalid("Give at least one item.", *field, "items")
    if len(items_raw) > MAX_ITEMS:
        raise invalid(f"A method has at most {MAX_ITEMS} items.", *field, "items")
    items: list[MethodItem] = []
    errors: list[DomainError] = []
    for index, item in enumerate(items_raw):
        try:
            items.append(_item(item, *field, "items", str(index)))
        except DomainError as exc:
            errors.append(exc)
    if errors:
        raise DomainErrors(errors)
    seen: set[Metric] = set()
    for index, item in enumerate(items):
        if item.metric in seen:
            raise invalid(f"{item.metric.value} is scored twice.", *field, "items", str(index), "metric")
        seen.add(item.metric)
    total = sum(i.weight for i in items)
    if not math.isclose(total, TOTAL_WEIGHT, abs_tol=1e-6):
        raise invalid(f"The weights add up to {total:g}, not {TOTAL_WEIGHT:g}.", *field, "items")
    return Method(code, name, source, tuple(items))


def shipped_method() -> Method:
    return method_from_dict(json.loads(SHIPPED_METHOD_PATH.read_text(encoding="utf-8")))


@dataclass(frozen=True, slots=True)
class ItemScore:
    item: MethodItem
    value: float | None  # None: nothing to measure
    score: float

    @property
    def explanation(self) -> str:
        """Why the item scored so, e.g. "18.8% < target 100%: 7.5 of 40" (built when read: a city's
        figures have thousands of rows)."""
        weight, target, value = self.item.weight, self.item.target, self.value
        if value is None:
            return f"nothing to measure in the period: full {weight:g}"
        if self.item.direction is Direction.AT_LEAST:
            why = f"{_pct(value)} {'≥' if value >= target else '<'} target {_pct(target)}"
        else:
            why = f"{_pct(value)} {'≤' if value <= target else '>'} target {_pct(target)} (at most)"
        return f"{why}: {self.score:g} of {weight:g}"


@dataclass(frozen=True, slots=True)
class Assessment:
    method_code: str
    score: float  # out of 100
    items: tuple[ItemScore, ...]


def _pct(value: float) -> str:
    return f"{round(value * 100, 1):g}%"


def score_item(item: MethodItem, value: float | None) -> ItemScore:
    weight, target = item.weight, item.target
    if value is None:
        return ItemScore(item, None, weight)
    if item.direction is Direction.AT_LEAST:
        share = min(1.0, value / target)
    else:
        share = 1.0 if value <= target else target / value
    return ItemScore(item, value, round(weight * share, 2))


def assess(method: Method, values: dict[Metric, float | None]) -> Assessment:
    scored = tuple(score_item(item, values.get(item.metric)) for item in method.items)
    return Assessment(method.code, round(sum(s.score for s in scored), 2), scored)
