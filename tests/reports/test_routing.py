from __future__ import annotations

import json
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from kernel.errors import DomainError, ErrorCode
from reports.categories import load_categories
from reports.datafile import DataFileError
from reports.routing import (
    Condition,
    Department,
    Jurisdiction,
    JurisdictionIndex,
    Router,
    RoutingRule,
    RuleScope,
    TimeWindow,
    load_jurisdictions,
    load_routing_rules,
)

SH = ZoneInfo("Asia/Shanghai")
CATALOG = load_categories()


def box(code: str, lon0: float, lat0: float, lon1: float, lat1: float) -> Jurisdiction:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return Jurisdiction.from_geojson(code, code, {"type": "Polygon", "coordinates": [ring]})


PLACES = JurisdictionIndex(
    [
        box("310000", 121.0, 30.7, 122.0, 31.9),  # a stand-in for Shanghai
        box("310101", 121.45, 31.2, 121.5, 31.25),  # a district inside it
        box("370200", 119.5, 35.5, 121.0, 37.0),  # a stand-in for Qingdao
    ]
)
DEPARTMENTS = [
    Department("sh-eco", "ecology_environment", "310000"),
    Department("sh-police", "police", "310000"),
    Department("sh-housing", "housing_construction", "310000"),
    Department("sh-cg", "urban_management", "310000"),
    Department("hp-cg", "urban_management", "310101"),
    Department("qd-eco", "ecology_environment", "370200"),
    Department("qd-cg", "urban_management", "370200"),
    Department("qd-housing", "housing_construction", "370200"),
]
TABLE = load_routing_rules("routing_national.json", "routing_city_310000.json", "routing_city_370200.json")
ROUTER = Router(CATALOG, TABLE.rules, PLACES, DEPARTMENTS)

SHANGHAI = (121.3, 31.1)
HUANGPU = (121.47, 31.23)
QINGDAO = (120.4, 36.1)
NOWHERE = (100.0, 40.0)
DAY = datetime(2025, 5, 13, 14, 0, tzinfo=SH)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 5, 13, hour, minute, tzinfo=SH)


def test_neighbour_noise_goes_to_the_police_with_its_source() -> None:
    decision = ROUTER.route(SHANGHAI, "noise.neighbour", {}, DAY)
    assert (decision.department_code, decision.rule_id) == ("sh-police", "cn.noise.neighbour")
    assert "and 87" in decision.reason and "national default" in decision.reason


@pytest.mark.parametrize(
    ("moment", "department"),
    [
        (at(14), "sh-housing"),
        (at(22), "sh-cg"),
        (at(23, 30), "sh-cg"),
        (at(5, 59), "sh-cg"),
        (at(6), "sh-housing"),
        (datetime(2025, 5, 13, 15, 30, tzinfo=UTC), "sh-cg"),  # 23:30 in Shanghai
    ],
)
def test_construction_noise_night_window_runs_overnight(moment: datetime, department: str) -> None:
    assert ROUTER.route(SHANGHAI, "noise.construction", {}, moment).department_code == department


def test_evidence_condition_and_window_precedence() -> None:
    loud = {"measured_db": 75.0}
    assert ROUTER.route(SHANGHAI, "noise.construction", loud, DAY).rule_id == "cn.noise.construction.measured"
    assert ROUTER.route(SHANGHAI, "noise.construction", {"measured_db": 65.0}, DAY).department_code == (
        "sh-housing"
    )
    # At night the window rule is more specific than the measured one.
    assert ROUTER.route(SHANGHAI, "noise.construction", loud, at(23)).rule_id == "cn.noise.construction.night"


def test_city_override_beats_national_default() -> None:
    shanghai = ROUTER.route(SHANGHAI, "odor.restaurant_fumes", {"intensity": 3}, DAY)
    assert (shanghai.department_code, shanghai.rule_id) == ("sh-eco", "sh.odor.restaurant_fumes")
    assert "city override" in shanghai.reason
    qingdao = ROUTER.route(QINGDAO, "odor.restaurant_fumes", {"intensity": 3}, DAY)
    assert (qingdao.department_code, qingdao.rule_id) == ("qd-cg", "cn.odor.restaurant_fumes")
    # Qingdao's override carries no window, yet beats the national night rule.
    assert ROUTER.route(QINGDAO, "noise.construction", {}, at(23, 30)).department_code == "qd-eco"


def test_the_most_local_department_of_a_kind_is_chosen() -> None:
    assert ROUTER.route(HUANGPU, "odor.open_burning", {"intensity": 2}, DAY).department_code == "hp-cg"
    assert ROUTER.route(SHANGHAI, "odor.open_burning", {"intensity": 2}, DAY).department_code == "sh-cg"


def test_sub_category_beats_group_wildcard() -> None:
    assert ROUTER.route(SHANGHAI, "noise.industrial", {}, DAY).rule_id == "cn.noise.industrial"
    assert ROUTER.route(SHANGHAI, "light.into_homes", {}, DAY).rule_id == "cn.light"


def test_outside_every_jurisdiction_goes_to_triage() -> None:
    decision = ROUTER.route(NOWHERE, "noise.neighbour", {}, DAY)
    assert decision.triage and decision.department_code is None
    assert "none covers this point" in decision.reason


def test_no_rule_goes_to_triage() -> None:
    decision = ROUTER.route(SHANGHAI, "other.other", {}, DAY)
    assert decision.triage and decision.rule_id is None
    assert "no routing rule" in decision.reason


def test_unknown_category_is_invalid_input() -> None:
    with pytest.raises(DomainError) as info:
        ROUTER.route(SHANGHAI, "noise.aliens", {}, DAY)
    assert info.value.code is ErrorCode.INVALID


def custom(*rules: RoutingRule) -> Router:
    return Router(CATALOG, rules, PLACES, DEPARTMENTS)


def test_jurisdiction_rule_beats_anywhere_and_priority_then_id_break_ties() -> None:
    router = custom(
        RoutingRule("b", "light.*", "s", department="sh-eco", priority=1),
        RoutingRule("a", "light.*", "s", department="sh-cg", priority=1),
        RoutingRule("c", "light.*", "s", department="sh-police", priority=0),
        RoutingRule("d", "light.*", "s", department="hp-cg", jurisdiction="310101"),
    )
    assert router.route(SHANGHAI, "light.into_homes", {}, DAY).rule_id == "a"
    assert router.route(HUANGPU, "light.into_homes", {}, DAY).rule_id == "d"


def test_smaller_jurisdiction_beats_larger() -> None:
    router = custom(
        RoutingRule("city", "light.*", "s", department="sh-cg", jurisdiction="310000", priority=9),
        RoutingRule("district", "light.*", "s", department="hp-cg", jurisdiction="310101"),
    )
    assert router.route(HUANGPU, "light.into_homes", {}, DAY).rule_id == "district"


def test_categories_at_a_point() -> None:
    shanghai = ROUTER.categories_at(SHANGHAI)
    assert "noise.neighbour" in shanghai and "odor.restaurant_fumes" in shanghai
    assert "other.other" not in shanghai  # no rule at all
    assert "waste.dumping" not in shanghai  # no sanitation department here
    assert "forest.fire" not in shanghai
    assert ROUTER.categories_at(NOWHERE) == []
    # Qingdao has no police department loaded, and the neighbour rule hides the group fallback,
    # so routing would triage: the form must not offer it either.
    qingdao = ROUTER.categories_at(QINGDAO)
    assert "noise.neighbour" not in qingdao
    assert ROUTER.route(QINGDAO, "noise.neighbour", {}, DAY).triage
    # Construction noise stays offered: Qingdao's override names its ecology bureau.
    assert "noise.construction" in qingdao


def test_conditions() -> None:
    assert Condition("measured_db", ">=", 55).holds({"measured_db": 55.0})
    assert not Condition("measured_db", ">=", 55).holds({"measured_db": 54.9})
    assert not Condition("measured_db", ">=", 55).holds({})
    assert not Condition("measured_db", ">=", 55).holds({"measured_db": True})
    assert Condition("source", "in", ("fan", "pump")).holds({"source": "pump"})
    assert Condition("recurring", "==", True).holds({"recurring": True})
    assert not Condition("recurring", "==", True).holds({"recurring": 1})
    assert Condition("recurring", "!=", True).holds({"recurring": False})
    with pytest.raises(ValueError):
        Condition("measured_db", ">=", "loud")


def test_windows() -> None:
    day = TimeWindow(time(6), time(22))
    assert day.contains(at(6)) and not day.contains(at(22))
    with pytest.raises(ValueError):
        TimeWindow(time(6), time(6))
    with pytest.raises(ValueError):
        day.contains(datetime(2025, 5, 13, 12))


@pytest.mark.parametrize(
    "rule",
    [
        RoutingRule("x", "noise.aliens", "s", department_kind="police"),
        RoutingRule("x", "sky.*", "s", department_kind="police"),
        RoutingRule("x", "noise.*", "s", department="no-such-dept"),
        RoutingRule("x", "noise.*", "s", department_kind="police", jurisdiction="999999"),
        RoutingRule(
            "x", "light.*", "s", department_kind="police", conditions=(Condition("measured_db", ">", 1),)
        ),
    ],
)
def test_router_refuses_rules_that_cannot_work(rule: RoutingRule) -> None:
    with pytest.raises(ValueError):
        custom(rule)


def test_two_departments_of_one_kind_for_one_place_are_refused() -> None:
    with pytest.raises(ValueError, match="two police"):
        Router(CATALOG, [], PLACES, [*DEPARTMENTS, Department("sh-police-2", "police", "310000")])


def test_rule_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RoutingRule("x", "noise.*", "s")
    with pytest.raises(ValueError, match="jurisdiction"):
        RoutingRule("x", "noise.*", "s", department_kind="police", scope=RuleScope.CITY)


def test_rule_files_are_validated(tmp_path) -> None:
    bad = tmp_path / "city.json"
    bad.write_text(
        '{"scope": "CITY", "city": "1", "rules": [{"id": "r", "category": "noise.*",'
        ' "department_kind": "wizards", "source": "s"}]}'
    )
    with pytest.raises(DataFileError, match="wizards"):
        load_routing_rules("routing_national.json", bad)
    bad.write_text('{"scope": "CITY", "rules": []}')
    with pytest.raises(DataFileError, match="city"):
        load_routing_rules(bad)


def test_every_shipped_rule_cites_a_source_and_city_rules_are_scoped() -> None:
    assert all(rule.source for rule in TABLE.rules)
    city = [rule for rule in TABLE.rules if rule.scope is RuleScope.CITY]
    assert {rule.jurisdiction for rule in city} == {"310000", "370200"}


def test_index_over_many_polygons() -> None:
    grid = [box(f"g{i}-{j}", 100 + i, 20 + j, 101 + i, 21 + j) for i in range(10) for j in range(5)]
    index = JurisdictionIndex(grid)
    assert [j.code for j in index.containing((103.5, 22.5))] == ["g3-2"]
    assert {j.code for j in index.containing((103.0, 22.5))} == {"g2-2", "g3-2"}  # on a shared border
    assert index.containing((0.0, 0.0)) == []


def test_bad_polygons_are_refused() -> None:
    bowtie = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]
    with pytest.raises(ValueError, match="invalid"):
        Jurisdiction.from_geojson("x", "x", {"type": "Polygon", "coordinates": [bowtie]})
    with pytest.raises(ValueError, match="Polygon"):
        Jurisdiction.from_geojson("x", "x", {"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(ValueError, match="WGS-84"):
        box("x", 200, 0, 201, 1)


def test_jurisdictions_load_from_a_feature_collection(tmp_path) -> None:
    ring = [[121.0, 31.0], [121.1, 31.0], [121.1, 31.1], [121.0, 31.0]]
    feature = {
        "type": "Feature",
        "properties": {"code": "310101", "name": "黄浦区"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path = tmp_path / "places.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    [place] = load_jurisdictions(path)
    assert (place.code, place.name) == ("310101", "黄浦区")
    feature["geometry"] = {"type": "LineString", "coordinates": ring}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(DataFileError, match="features.0"):
        load_jurisdictions(path)
