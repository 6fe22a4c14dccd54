"""The patrol issue catalog: what a chief may record as an observation, and which reports category
it becomes when handed off as a case."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from kernel.errors import invalid
from patrols.rules import AreaKind

CATALOG_PATH = Path(__file__).parent / "data" / "observation_categories.json"


@dataclass(frozen=True, slots=True)
class ObservationCategory:
    code: str
    name_zh: str
    name_en: str
    area_kinds: frozenset[AreaKind]
    case_category: str  # a reports category code
    # A different reports category on one kind of area (building on forest land is not on a shore).
    case_category_by_area_kind: dict[AreaKind, str]

    def case_category_for(self, area_kind: AreaKind) -> str:
        return self.case_category_by_area_kind.get(area_kind, self.case_category)


@functools.cache
def observation_categories() -> dict[str, ObservationCategory]:
    raw = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))["categories"]
    return {
        item["code"]: ObservationCategory(
            code=item["code"],
            name_zh=item["name"]["zh-CN"],
            name_en=item["name"]["en"],
            area_kinds=frozenset(AreaKind(k) for k in item["area_kinds"]),
            case_category=item["case_category"],
            case_category_by_area_kind={
                AreaKind(k): v for k, v in item.get("case_category_by_area_kind", {}).items()
            },
        )
        for item in raw
    }


def observation_category(code: str, area_kind: AreaKind, *field: str) -> ObservationCategory:
    category = observation_categories().get(code)
    if category is None:
        known = ", ".join(observation_categories())
        raise invalid(f"Unknown observation category {code!r}; one of {known}.", *field)
    if area_kind not in category.area_kinds:
        raise invalid(f"{category.name_en} is not an observation for a {area_kind.lower()}.", *field)
    return category
