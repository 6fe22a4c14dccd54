"""The one city configuration: the shipped holiday calendar checked against a maintained source, the
admin's years through the API (validated, stored, shared), and `WORKING_DAY` patrol periods that follow
the holidays and make-up workdays."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import chinese_calendar
import pytest
from chinese_calendar import constants as maintained

from identity.models import Role
from kernel import city
from kernel.city import CalendarYear, load_city
from patrols.access import Viewer
from patrols.compliance import compliance, upsert_rules
from patrols.models import ChiefAssignment
from reports.store import working_calendar
from server.seed import seed_demo
from tests.graphql_client import gql_data, new_account

SET_YEAR = """mutation($input: CalendarYearSetInput!) { calendarYearSet(input: $input) {
  calendarYear { year source stored holidays { name from to } workdays { name date } }
  userErrors { code field message } } }"""
CALENDAR = """query($year: Int!) { cityCalendar { timezone locale years
  year(year: $year) { year stored holidays { name from to } workdays { date } }
  holiday: isWorkingDay(date: "2027-02-08") weekend: isWorkingDay(date: "2027-02-13") } }"""

# A made-up plan for a year no notice covers yet: 2027-02-06 is a Saturday, 2027-02-13 too.
PLAN_2027: dict[str, Any] = {
    "year": 2027,
    "holidays": [{"name": "春节", "from": "2027-02-06", "to": "2027-02-12"}],
    "workdays": [{"name": "春节调休", "date": "2027-02-13"}],
    "source": "test notice 2027",
}


def _by_year(days: object) -> dict[int, set[date]]:
    grouped: dict[int, set[date]] = defaultdict(set)
    for day in days:  # type: ignore[attr-defined]
        grouped[day.year].add(day)
    return grouped


def test_the_shipped_calendar_matches_the_maintained_package_for_every_year_it_covers() -> None:
    shipped = load_city()
    holidays, workdays = _by_year(maintained.holidays), _by_year(maintained.workdays)
    covered = sorted(set(holidays) | set(workdays))
    assert covered[0] <= 2004 and shipped.years() == covered, chinese_calendar.__version__
    for year in covered:
        plan = shipped.plans[year]
        assert plan.holiday_dates() == holidays[year], year
        assert plan.workday_dates() == workdays.get(year, set()), year
        for day in plan.workday_dates():  # every make-up workday moves a weekend day
            assert day.weekday() >= 5, day


def test_the_city_calendar_drives_deadlines_and_local_dates() -> None:
    here = city.current()
    assert here.timezone == "Asia/Shanghai" and working_calendar() is here.calendar
    assert not working_calendar().is_working_day(date(2010, 10, 1))  # a year the file did not have before
    assert working_calendar().is_working_day(date(2026, 10, 10))  # Saturday, 调休


async def test_anyone_reads_the_calendar_and_an_admin_adds_a_year(client) -> None:
    seen = (await gql_data(client, CALENDAR, {"year": 2026}))["cityCalendar"]
    assert (seen["timezone"], seen["locale"]) == ("Asia/Shanghai", "zh-CN")
    assert 2004 in seen["years"] and 2027 not in seen["years"]
    assert seen["year"]["holidays"][0] == {"name": "元旦", "from": "2026-01-01", "to": "2026-01-03"}
    assert seen["year"]["stored"] is False and seen["holiday"] is True  # no plan for 2027 yet: a Monday

    admin = await new_account(client, Role.ADMIN, "calendar.admin")
    added = (await gql_data(client, SET_YEAR, {"input": PLAN_2027}, token=admin))["calendarYearSet"]
    assert added["userErrors"] == []
    assert added["calendarYear"]["stored"] is True and added["calendarYear"]["year"] == 2027
    seen = (await gql_data(client, CALENDAR, {"year": 2027}))["cityCalendar"]
    assert 2027 in seen["years"] and seen["holiday"] is False and seen["weekend"] is True
    assert not working_calendar().is_working_day(date(2027, 2, 8))  # deadlines skip it now

    again = (await gql_data(client, SET_YEAR, {"input": PLAN_2027}, token=admin))["calendarYearSet"]
    assert again["userErrors"] == [] and again["calendarYear"] == added["calendarYear"]  # a retry
    assert await CalendarYear.all().count() == 1

    # Kept in the database: a restarted process (or another one) lays it over the shipped file again.
    city.configure(None)
    assert working_calendar().is_working_day(date(2027, 2, 8))
    await city.refresh()
    assert not working_calendar().is_working_day(date(2027, 2, 8))


async def test_a_year_the_city_has_is_replaced_only_when_asked(client) -> None:
    admin = await new_account(client, Role.ADMIN, "calendar.admin")
    changed = {**PLAN_2027, "year": 2026, "holidays": [{"name": "春节", "from": "2026-02-16", "to": "2026-02-18"}],
               "workdays": [], "source": "corrected notice"}  # fmt: skip
    refused = (await gql_data(client, SET_YEAR, {"input": changed}, token=admin))["calendarYearSet"]
    assert refused["calendarYear"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("CONFLICT", ["input", "replace"])]
    assert await CalendarYear.all().count() == 0
    assert not working_calendar().is_working_day(date(2026, 10, 7))

    replaced = await gql_data(client, SET_YEAR, {"input": {**changed, "replace": True}}, token=admin)
    assert replaced["calendarYearSet"]["userErrors"] == []
    assert working_calendar().is_working_day(date(2026, 10, 7))  # the shipped 2026 is gone
    assert not working_calendar().is_working_day(date(2026, 2, 17))
    assert working_calendar().is_working_day(date(2026, 2, 23))


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"workdays": [{"name": "x", "date": "2027-02-08"}]}, "CONFLICT", ["input", "workdays", "0", "date"]),
        ({"workdays": [{"name": "x", "date": "2027-02-15"}]}, "INVALID", ["input", "workdays", "0", "date"]),
        (
            {"holidays": [{"name": "元旦", "from": "2026-12-31", "to": "2027-01-01"}]},
            "INVALID",
            ["input", "holidays", "0"],
        ),  # fmt: skip
        (
            {"holidays": [{"name": "春节", "from": "2027-02-12", "to": "2027-02-06"}]},
            "INVALID",
            ["input", "holidays", "0", "to"],
        ),  # fmt: skip
        (
            {
                "holidays": [
                    *PLAN_2027["holidays"],
                    {"name": "again", "from": "2027-02-10", "to": "2027-02-11"},
                ]
            },
            "INVALID",
            ["input", "holidays", "1"],
        ),  # fmt: skip
        ({"workdays": [{"name": "x", "date": "2028-01-01"}]}, "INVALID", ["input", "workdays", "0", "date"]),
        ({"year": 1800}, "INVALID", ["input", "year"]),
        ({"source": " "}, "INVALID", ["input", "source"]),
        (
            {"holidays": [{"name": "", "from": "2027-02-06", "to": "2027-02-06"}]},
            "INVALID",
            ["input", "holidays", "0", "name"],
        ),  # fmt: skip
    ],
)
async def test_a_contradictory_year_gets_a_typed_error_and_stores_nothing(
    client, change, code, field
) -> None:
    admin = await new_account(client, Role.ADMIN, "calendar.admin")
    result = (await gql_data(client, SET_YEAR, {"input": {**PLAN_2027, **change}}, token=admin))[
        "calendarYearSet"
    ]
    assert result["calendarYear"] is None
    assert (result["userErrors"][0]["code"], result["userErrors"][0]["field"]) == (code, field)
    assert await CalendarYear.all().count() == 0
    assert 2027 not in city.current().years()


async def test_only_admins_set_calendar_years(client) -> None:
    chief = await new_account(client, Role.CHIEF, "some.chief")
    result = (await gql_data(client, SET_YEAR, {"input": PLAN_2027}, token=chief))["calendarYearSet"]
    assert [e["code"] for e in result["userErrors"]] == ["FORBIDDEN"]
    anonymous = (await gql_data(client, SET_YEAR, {"input": PLAN_2027}))["calendarYearSet"]
    assert [e["code"] for e in anonymous["userErrors"]] == ["UNAUTHENTICATED"]


WORKING_DAY_RULE = {
    "code": "TEST-WORKING-DAY",
    "source": "test: a patrol every working day",
    "region_code": "999900",
    "chief_level": "VILLAGE",
    "chief_kind": "RIVER",
    "period": "WORKING_DAY",
    "min_count": 1,
}


async def _working_day_labels(first: date, last: date) -> list[str]:
    verdicts = await compliance(Viewer(None, True, ()), first, last)
    [verdict] = [v for v in verdicts if v.rule.code == WORKING_DAY_RULE["code"]]
    return [p.label for p in verdict.verdict.periods]


async def test_working_day_periods_follow_the_holidays_and_make_up_days(client) -> None:
    await seed_demo()
    await upsert_rules([WORKING_DAY_RULE])
    assert await ChiefAssignment.filter(level="VILLAGE").count() == 1
    # National Day 2026: 1-7 October off, Saturday 10 October worked (调休).
    labels = await _working_day_labels(date(2026, 9, 28), date(2026, 10, 11))
    expected = [date(2026, 9, d) for d in (28, 29, 30)] + [
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    assert labels == [d.isoformat() for d in expected]

    # An admin's year counts at once, in compliance too.
    admin = await new_account(client, Role.ADMIN, "calendar.admin")
    plan = {**PLAN_2027, "holidays": [{"name": "春节", "from": "2027-02-08", "to": "2027-02-09"}]}
    assert (await gql_data(client, SET_YEAR, {"input": plan}, token=admin))["calendarYearSet"][
        "userErrors"
    ] == []
    await ChiefAssignment.filter(level="VILLAGE").update(valid_to=None)
    labels = await _working_day_labels(date(2027, 2, 8), date(2027, 2, 14))
    days = [date(2027, 2, 8) + timedelta(days=n) for n in range(7)]
    assert labels == [d.isoformat() for d in days if d.day in (10, 11, 12, 13)]
