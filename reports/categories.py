"""The category catalog: what a resident can report, read from `reports/data/categories.json`.

File format:

    {"groups": {"NOISE": {"name": {"zh-CN": "...", "en": "..."},
                          "duplicate_radius_m": 250, "duplicate_window_hours": 24}, ...},
     "categories": [{"code": "noise.construction", "group": "NOISE",
                     "name": {"zh-CN": "...", "en": "..."},
                     "sla_policy": "hotline_5wd",
                     "after_photos_required": true, "verification_required": false,
                     "home_related": false,
                     "duplicate_radius_m": 300, "duplicate_window_hours": 12,  # optional: group default
                     "notice": {"zh-CN": "...", "en": "..."},  # optional: shown before submit
                     "evidence": {<field>: <spec>, ...}}]}  # see reports.evidence

A code is `<group in lower case>.<name>`, so a rule can name a whole group as `noise.*`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.datafile import DataFileError, expect, only_keys, read_json, require, where
from reports.evidence import EvidenceSchema, parse_schema


class CategoryGroup(enum.StrEnum):
    """What kind of nuisance: a category's code starts with its group (`noise.construction`)."""

    NOISE = "NOISE"
    ODOR = "ODOR"
    LIGHT = "LIGHT"
    WASTE = "WASTE"
    WATER = "WATER"
    FOREST = "FOREST"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class Names:
    zh_cn: str
    en: str


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    group: CategoryGroup
    name: Names
    sla_policy: str
    after_photos_required: bool
    verification_required: bool
    # Reports at a home must not be pinned exactly on the public map.
    home_related: bool
    duplicate_radius_m: float
    duplicate_window_hours: float
    evidence: EvidenceSchema
    notice: Names | None = None


class CategoryCatalog:
    def __init__(self, categories: Collection[Category], group_names: Mapping[CategoryGroup, Names]) -> None:
        self._by_code = {c.code: c for c in categories}
        if len(self._by_code) != len(categories):
            raise DataFileError("categories: duplicate code")
        self.group_names = dict(group_names)

    def get(self, code: str) -> Category | None:
        return self._by_code.get(code)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def load_categories(
    source: str | Path = "categories.json", known_sla_policies: Collection[str] | None = None
) -> CategoryCatalog:
    """Load and check the catalog; pass `known_sla_policies` to also check every policy reference."""
    raw = expect(read_json(source), dict)
    only_keys(raw, ("groups", "categories"))
    groups = require(raw, "groups", dict)
    defaults: dict[CategoryGroup, dict[str, Any]] = {}
    names: dict[CategoryGroup, Names] = {}
    for key, spec in groups.items():
        group = _group(key, "groups", key)
        expect(spec, dict, "groups", key)
        only_keys(spec, ("name", "duplicate_radius_m", "duplicate_window_hours"), "groups", key)
        names[group] = parse_names(require(spec, "name", dict, "groups", key), "groups", key, "name")
        defaults[group] = spec
    missing = set(CategoryGroup) - set(defaults)
    if missing:
        raise DataFileError(f"groups: missing {sorted(missing)}")
    items = require(raw, "categories", list)
    categories = [
        _category(item, defaults, known_sla_policies, "categories", i) for i, item in enumerate(items)
    ]
    return CategoryCatalog(categories, names)


_CATEGORY_KEYS = (
    "code",
    "group",
    "name",
    "sla_policy",
    "after_photos_required",
    "verification_required",
    "home_related",
    "duplicate_radius_m",
    "duplicate_window_hours",
    "notice",
    "evidence",
)


def _category(
    raw: Any,
    defaults: Mapping[CategoryGroup, Mapping[str, Any]],
    known_sla: Collection[str] | None,
    *path: str | int,
) -> Category:
    expect(raw, dict, *path)
    only_keys(raw, _CATEGORY_KEYS, *path)
    code = require(raw, "code", str, *path)
    group = _group(require(raw, "group", str, *path), *path, "group")
    if not code.startswith(group.lower() + ".") or code.endswith(".*"):
        raise DataFileError(f"{where(*path, 'code')}: {code!r} must look like '{group.lower()}.<name>'")
    sla = require(raw, "sla_policy", str, *path)
    if known_sla is not None and sla not in known_sla:
        raise DataFileError(f"{where(*path, 'sla_policy')}: unknown policy {sla!r}")
    group_default = defaults[group]
    notice = raw.get("notice")
    if notice is not None:
        notice = parse_names(expect(notice, dict, *path, "notice"), *path, "notice")
    return Category(
        code=code,
        group=group,
        name=parse_names(require(raw, "name", dict, *path), *path, "name"),
        sla_policy=sla,
        after_photos_required=require(raw, "after_photos_required", bool, *path),
        verification_required=require(raw, "verification_required", bool, *path),
        home_related=require(raw, "home_related", bool, *path),
        duplicate_radius_m=_positive(raw, group_default, "duplicate_radius_m", *path),
        duplicate_window_hours=_positive(raw, group_default, "duplicate_window_hours", *path),
        evidence=parse_schema(raw.get("evidence", {}), *path, "evidence"),
        notice=notice,
    )


def _group(value: str, *path: str | int) -> CategoryGroup:
    try:
        return CategoryGroup(value)
    except ValueError:
        raise DataFileError(f"{where(*path)}: unknown group {value!r}") from None


def parse_names(raw: Mapping[str, Any], *path: str | int) -> Names:
    only_keys(raw, ("zh-CN", "en"), *path)
    return Names(zh_cn=require(raw, "zh-CN", str, *path), en=require(raw, "en", str, *path))


def _positive(raw: Mapping[str, Any], default: Mapping[str, Any], key: str, *path: str | int) -> float:
    value = raw.get(key, default.get(key))
    if value is None:
        raise DataFileError(f"{where(*path, key)}: missing, and the group has no default")
    if expect(value, (int, float), *path, key) <= 0:
        raise DataFileError(f"{where(*path, key)}: must be positive")
    return float(value)
