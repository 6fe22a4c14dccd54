from __future__ import annotations

import pytest

from kernel.errors import DomainError, DomainErrors, ErrorCode
from reports.categories import load_categories
from reports.datafile import DataFileError
from reports.evidence import parse_schema, validate_evidence

NOISE = parse_schema(
    {
        "measured_db": {"type": "number", "min": 20, "max": 140},
        "observed_time": {"type": "time"},
        "recurring": {"type": "bool"},
    }
)
ODOR = parse_schema(
    {
        "intensity": {"type": "int", "min": 1, "max": 5, "required": True},
        "material": {"type": "enum", "values": ["plastic", "straw"]},
        "details": {"type": "string", "max_length": 5},
        "observed_at": {"type": "datetime"},
    }
)


def problems(schema, values) -> dict[tuple[str, ...], str]:
    with pytest.raises(DomainErrors) as info:
        validate_evidence(schema, values)
    assert all(e.code is ErrorCode.INVALID for e in info.value.errors)
    return {tuple(e.field or ()): e.message for e in info.value.errors}


def test_valid_noise_evidence_is_cleaned() -> None:
    cleaned = validate_evidence(NOISE, {"measured_db": 72, "observed_time": "23:30", "recurring": True})
    assert cleaned == {"measured_db": 72.0, "observed_time": "23:30", "recurring": True}


def test_500_db_is_refused_with_its_field_path() -> None:
    assert problems(NOISE, {"measured_db": 500}) == {
        ("input", "evidence", "measured_db"): "must be at most 140"
    }


def test_below_minimum_is_refused() -> None:
    assert problems(NOISE, {"measured_db": 3}) == {
        ("input", "evidence", "measured_db"): "must be at least 20"
    }


def test_wrong_types_are_each_reported() -> None:
    found = problems(NOISE, {"measured_db": "loud", "observed_time": "late", "recurring": "yes"})
    assert found == {
        ("input", "evidence", "measured_db"): "must be a number",
        ("input", "evidence", "observed_time"): "must be a time of day like 22:30",
        ("input", "evidence", "recurring"): "must be true or false",
    }


def test_booleans_and_fractions_are_not_integers() -> None:
    assert ("input", "evidence", "intensity") in problems(ODOR, {"intensity": True})
    assert problems(ODOR, {"intensity": 2.5}) == {
        ("input", "evidence", "intensity"): "must be a whole number"
    }


def test_unknown_keys_are_rejected() -> None:
    assert problems(NOISE, {"decibels": 60}) == {
        ("input", "evidence", "decibels"): "is not a known field for this category"
    }


def test_required_missing_and_none_counts_as_absent() -> None:
    assert problems(ODOR, {"intensity": None}) == {("input", "evidence", "intensity"): "is required"}
    assert validate_evidence(NOISE, {"measured_db": None}) == {}
    assert validate_evidence(NOISE, None) == {}


def test_enum_string_length_and_datetime() -> None:
    found = problems(
        ODOR, {"intensity": 3, "material": "tyres", "details": "too long", "observed_at": "2025-05-01T22:30"}
    )
    assert found == {
        ("input", "evidence", "material"): "must be one of: plastic, straw",
        ("input", "evidence", "details"): "must be at most 5 characters",
        (
            "input",
            "evidence",
            "observed_at",
        ): "must be a date-time with a timezone, like 2025-05-01T22:30:00+08:00",
    }
    cleaned = validate_evidence(ODOR, {"intensity": 3, "observed_at": "2025-05-01T22:30:00+08:00"})
    assert cleaned["observed_at"] == "2025-05-01T14:30:00+00:00"


def test_evidence_must_be_an_object() -> None:
    with pytest.raises(DomainError) as info:
        validate_evidence(NOISE, [1, 2])
    assert info.value.field == ["input", "evidence"]


@pytest.mark.parametrize(
    "bad",
    [
        {"x": {"type": "colour"}},
        {"x": {"type": "bool", "min": 1}},
        {"x": {"type": "enum"}},
        {"x": {"type": "int", "min": 5, "max": 1}},
        {"x": {"type": "int", "maximum": 5}},
    ],
)
def test_malformed_schemas_are_refused_at_load(bad: dict) -> None:
    with pytest.raises(DataFileError):
        parse_schema(bad)


def test_shipped_catalog_covers_every_group_and_the_research_subcategories() -> None:
    catalog = load_categories()
    assert {c.group for c in catalog} == set(catalog.group_names)
    for code in (
        "noise.neighbour",
        "noise.construction",
        "noise.commercial",
        "noise.industrial",
        "noise.vehicle",
        "odor.industrial",
        "odor.restaurant_fumes",
        "odor.open_burning",
        "light.into_homes",
        "light.led_billboard",
        "waste.not_sorting",
        "waste.mixed_collection",
        "waste.overflowing_bins",
        "waste.dumping",
        "water.discharge",
        "water.floating_rubbish",
        "forest.illegal_logging",
        "forest.fire",
        "forest.pests",
        "other.other",
    ):
        assert code in catalog, code
    construction = catalog.get("noise.construction")
    assert construction is not None
    assert construction.duplicate_radius_m == 250
    measured = construction.evidence.field("measured_db")
    assert measured is not None and measured.max == 140
    neighbour = catalog.get("noise.neighbour")
    assert neighbour is not None and neighbour.home_related


def test_catalog_rejects_unknown_sla_policy_when_asked() -> None:
    with pytest.raises(DataFileError, match="unknown policy"):
        load_categories(known_sla_policies={"nothing"})
