import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from kernel.errors import DomainError
from patrols.rules import (
    AreaKind,
    Assignment,
    ChiefKind,
    ChiefLevel,
    CountScope,
    PatrolRule,
    PatrolSummary,
    Period,
    evaluate,
    load_rules,
    rule_applies,
    rule_from_dict,
    split_periods,
)

VILLAGE_WEEKLY = PatrolRule(
    code="TEST-VILLAGE-WEEKLY",
    source="test",
    region_code="440100",
    chief_level=ChiefLevel.VILLAGE,
    chief_kind=ChiefKind.RIVER,
    period=Period.WEEK,
    min_count=1,
    min_duration_min=10,
    min_distance_km=1,
)


def patrol(
    pid: str,
    start: datetime,
    minutes: float = 40,
    km: float = 2.0,
    *,
    area: str = "A",
    coverage: float | None = None,
) -> PatrolSummary:
    return PatrolSummary(pid, "chief-1", area, start, start + timedelta(minutes=minutes), km * 1000, coverage)


def beijing(y: int, m: int, d: int, h: int = 9) -> datetime:
    # 09:00 Beijing time, expressed in UTC as the database stores it.
    return datetime(y, m, d, h, tzinfo=UTC) - timedelta(hours=8)


def test_dekads_of_a_leap_february():
    windows = split_periods(Period.DEKAD, date(2024, 2, 1), date(2024, 2, 29))
    assert [(w.label, w.first_day.day, w.last_day.day) for w in windows] == [
        ("2024-02-D1", 1, 10),
        ("2024-02-D2", 11, 20),
        ("2024-02-D3", 21, 29),
    ]
    assert split_periods(Period.DEKAD, date(2023, 2, 25), date(2023, 2, 25))[0].last_day == date(2023, 2, 28)
    assert split_periods(Period.DEKAD, date(2023, 1, 31), date(2023, 1, 31))[0].first_day == date(2023, 1, 21)


def test_quarters_half_years_and_weeks():
    assert [w.label for w in split_periods(Period.QUARTER, date(2024, 1, 1), date(2024, 12, 31))] == [
        "2024-Q1",
        "2024-Q2",
        "2024-Q3",
        "2024-Q4",
    ]
    half = split_periods(Period.HALF_YEAR, date(2024, 7, 5), date(2024, 7, 5))[0]
    assert (half.label, half.first_day, half.last_day) == ("2024-H2", date(2024, 7, 1), date(2024, 12, 31))
    week = split_periods(Period.WEEK, date(2024, 12, 31), date(2024, 12, 31))[0]
    assert (week.label, week.first_day, week.last_day) == ("2025-W01", date(2024, 12, 30), date(2025, 1, 5))


def test_working_days_skip_weekends_and_holidays_and_add_makeup_days():
    days = split_periods(
        Period.WORKING_DAY,
        date(2024, 9, 28),
        date(2024, 10, 8),
        holidays=frozenset(date(2024, 10, d) for d in range(1, 8)),
        makeup_workdays=frozenset({date(2024, 9, 29), date(2024, 10, 12)}),
    )
    assert [w.label for w in days] == ["2024-09-29", "2024-09-30", "2024-10-08"]


def test_one_patrol_in_each_dekad_meets_all_three():
    rule = replace(VILLAGE_WEEKLY, period=Period.DEKAD)
    patrols = [
        patrol("p1", beijing(2024, 2, 3)),
        patrol("p2", beijing(2024, 2, 15)),
        patrol("p3", beijing(2024, 2, 29)),
    ]
    verdict = evaluate(rule, patrols, date(2024, 2, 1), date(2024, 2, 29))
    assert [(p.label, p.required, p.done) for p in verdict.periods] == [
        ("2024-02-D1", 1, 1),
        ("2024-02-D2", 1, 1),
        ("2024-02-D3", 1, 1),
    ]
    assert verdict.met


def test_patrols_fall_in_the_local_period_not_the_utc_one():
    # 00:30 on 21 Feb in Beijing is still 20 Feb in UTC: it belongs to the third dekad.
    rule = replace(VILLAGE_WEEKLY, period=Period.DEKAD)
    early = patrol("p", datetime(2024, 2, 20, 16, 30, tzinfo=UTC))
    verdict = evaluate(rule, [early], date(2024, 2, 1), date(2024, 2, 29))
    assert verdict.patrols[0].period == "2024-02-D3"
    utc_verdict = evaluate(rule, [early], date(2024, 2, 1), date(2024, 2, 29), timezone="UTC")
    assert utc_verdict.patrols[0].period == "2024-02-D2"


def test_a_short_patrol_is_kept_but_not_counted_with_its_reasons():
    verdict = evaluate(
        VILLAGE_WEEKLY,
        [patrol("p", beijing(2024, 3, 5), minutes=9, km=0.6)],
        date(2024, 3, 4),
        date(2024, 3, 10),
    )
    judgement = verdict.patrols[0]
    assert not judgement.counted
    assert judgement.reasons == (
        "9 min < 10 min required",
        "0.6 km < 1 km required",
        "not counted for 2024-W10",
    )
    assert (verdict.required, verdict.done, verdict.missing) == (1, 0, 1)


def test_a_good_patrol_counts_with_its_reasons():
    verdict = evaluate(
        VILLAGE_WEEKLY,
        [patrol("p", beijing(2024, 3, 5), minutes=22.5, km=1.25)],
        date(2024, 3, 4),
        date(2024, 3, 10),
    )
    assert verdict.patrols[0].counted
    assert verdict.patrols[0].reasons == (
        "22.5 min ≥ 10 min required",
        "1.2 km ≥ 1 km required",
        "counted for 2024-W10",
    )


def test_a_shortfall_is_never_rounded_up_to_the_threshold():
    rule = replace(VILLAGE_WEEKLY, min_duration_min=30, min_distance_km=None)
    verdict = evaluate(
        rule, [patrol("p", beijing(2024, 3, 5), minutes=29.97)], date(2024, 3, 4), date(2024, 3, 10)
    )
    assert verdict.patrols[0].reasons[0] == "29.9 min < 30 min required"


def test_minimum_gap_between_counted_patrols():
    rule = replace(VILLAGE_WEEKLY, min_gap_hours=2)
    first = patrol("p1", beijing(2024, 3, 5, 9), minutes=30)
    too_soon = patrol("p2", beijing(2024, 3, 5, 10), minutes=30)  # starts 30 min after p1 ended
    still_soon = patrol("p3", beijing(2024, 3, 5, 11), minutes=30)  # 1.5 h after p1; p2 did not count
    later = patrol("p4", beijing(2024, 3, 5, 12), minutes=30)  # 2.5 h after p1 ended
    verdict = evaluate(rule, [later, still_soon, too_soon, first], date(2024, 3, 4), date(2024, 3, 10))
    counted = {j.patrol_id: j.counted for j in verdict.patrols}
    assert counted == {"p1": True, "p2": False, "p3": False, "p4": True}
    reasons = {j.patrol_id: j.reasons for j in verdict.patrols}
    assert "within 2 h of a counted patrol (0.5 h after it)" in reasons["p2"]
    assert "within 2 h of a counted patrol (1.5 h after it)" in reasons["p3"]
    assert verdict.periods[0].counted == ("p1", "p4")


def test_active_months_exempt_winter_periods():
    rule = replace(VILLAGE_WEEKLY, period=Period.MONTH, active_months=frozenset(range(3, 13)))
    verdict = evaluate(rule, [patrol("p", beijing(2024, 2, 10))], date(2024, 1, 1), date(2024, 3, 31))
    assert [(p.label, p.required, p.note is None) for p in verdict.periods] == [
        ("2024-01", 0, False),
        ("2024-02", 0, False),
        ("2024-03", 1, True),
    ]
    assert verdict.patrols[0].reasons == ("period 2024-02 is outside the rule's active months",)
    assert verdict.missing == 1


def test_partial_periods_at_the_range_edges_require_nothing():
    verdict = evaluate(VILLAGE_WEEKLY, [], date(2024, 3, 6), date(2024, 3, 17))
    assert [(p.label, p.required) for p in verdict.periods] == [("2024-W10", 0), ("2024-W11", 1)]
    assert verdict.periods[0].note is not None
    assert "only partly inside" in verdict.periods[0].note


def test_per_area_rules_need_each_area_patrolled():
    rule = replace(VILLAGE_WEEKLY, period=Period.MONTH, min_count=2, count_scope=CountScope.PER_AREA)
    patrols = [
        patrol("a1", beijing(2024, 3, 2), area="A"),
        patrol("a2", beijing(2024, 3, 9), area="A"),
        patrol("b1", beijing(2024, 3, 3), area="B"),
        patrol("x1", beijing(2024, 3, 4), area="X"),
    ]
    verdict = evaluate(rule, patrols, date(2024, 3, 1), date(2024, 3, 31), areas=["A", "B"])
    assert [(p.area_id, p.done, p.missing) for p in verdict.periods] == [("A", 2, 0), ("B", 1, 1)]
    assert {j.patrol_id: j.reasons for j in verdict.patrols}["x1"] == (
        "area X is not one of the assessed areas",
    )
    with pytest.raises(DomainError):
        evaluate(rule, patrols, date(2024, 3, 1), date(2024, 3, 31))


def test_coverage_threshold_and_unknown_coverage():
    rule = replace(VILLAGE_WEEKLY, min_duration_min=None, min_distance_km=None, min_coverage=0.6)
    verdict = evaluate(
        rule,
        [patrol("low", beijing(2024, 3, 5), coverage=0.45), patrol("none", beijing(2024, 3, 6, 15))],
        date(2024, 3, 4),
        date(2024, 3, 10),
    )
    assert [j.reasons[0] for j in verdict.patrols] == [
        "45% coverage < 60% coverage required",
        "coverage unknown; 60% coverage required",
    ]


def test_disqualified_and_out_of_range_patrols_are_explained():
    flagged = replace(patrol("f", beijing(2024, 3, 5)), disqualified="mock locations")
    verdict = evaluate(
        VILLAGE_WEEKLY, [flagged, patrol("o", beijing(2024, 4, 1))], date(2024, 3, 4), date(2024, 3, 10)
    )
    assert [j.reasons for j in verdict.patrols] == [
        ("disqualified: mock locations",),
        ("2024-04-01 is in no week period of the assessment range",),
    ]


def test_rule_applies_by_region_prefix_level_kind_and_dates():
    guangzhou_village = Assignment(
        "440106001200", ChiefLevel.VILLAGE, ChiefKind.RIVER, AreaKind.RIVER_SEGMENT
    )
    assert rule_applies(VILLAGE_WEEKLY, guangzhou_village)
    assert not rule_applies(VILLAGE_WEEKLY, replace(guangzhou_village, region_code="440500"))
    assert not rule_applies(VILLAGE_WEEKLY, replace(guangzhou_village, chief_level=ChiefLevel.TOWNSHIP))
    assert not rule_applies(replace(VILLAGE_WEEKLY, area_kind=AreaKind.LAKE), guangzhou_village)
    dated = replace(VILLAGE_WEEKLY, effective_from=date(2021, 7, 1))
    assert not rule_applies(dated, guangzhou_village, on=date(2021, 6, 30))
    assert rule_applies(dated, guangzhou_village, on=date(2021, 7, 1))


def test_seed_rules_load_with_sources():
    rules = {r.code: r for r in load_rules()}
    assert rules["HENAN-2018-RIVER-VILLAGE"].period is Period.WEEK
    assert rules["HENAN-2018-RIVER-COUNTY"].period is Period.QUARTER
    guangzhou = rules["GUANGZHOU-2021-RIVER-VILLAGE"]
    assert (guangzhou.period, guangzhou.min_duration_min, guangzhou.min_distance_km) == (Period.DEKAD, 10, 1)
    akqi = rules["AKQI-2022-RIVER-VILLAGE"]
    assert akqi.active_months == frozenset(range(3, 13)) and akqi.min_gap_hours == 96
    assert all(r.source for r in rules.values())


def test_bad_rule_data_names_the_field(tmp_path):
    raw = {"code": "X", "source": "s", "region_code": "41", "chief_level": "VILLAGE", "chief_kind": "RIVER"}
    with pytest.raises(DomainError) as err:
        rule_from_dict({**raw, "period": "FORTNIGHT", "min_count": 1})
    assert err.value.field == ["period"]
    with pytest.raises(DomainError) as err:
        rule_from_dict({**raw, "period": "WEEK", "min_count": 1, "active_months": [0, 13]})
    assert err.value.field == ["active_months"]
    path = tmp_path / "rules.json"
    rule = {**raw, "period": "WEEK", "min_count": 1}
    path.write_text(json.dumps({"rules": [rule, rule]}))
    with pytest.raises(DomainError, match="Duplicate rule codes: X"):
        load_rules(path)
