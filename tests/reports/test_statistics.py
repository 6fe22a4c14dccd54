"""Managers' case statistics over HTTP: a month of history made through the real transitions, and the
figures checked against values worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from strawberry.relay import to_base64 as relay_id

from identity.models import User
from kernel import clock
from reports.casework import Step, transition
from reports.lifecycle import Action
from reports.models import Category, Department
from server.settings import Settings
from tests.conftest import make_settings
from tests.graphql_client import gql, gql_data
from tests.reports.helpers import db_id, demo_sign_in, new_photo, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = {"from": "2026-03-01", "to": "2026-04-01"}

STATISTICS = """
query($input: CaseStatisticsInput!) {
  caseStatistics(input: $input) {
    total department { code } category { code }
    received accepted returned resolved closed reopened
    responses onTimeAcceptanceRate resolutions onTimeResolutionRate
    handlingHoursMedian handlingHoursP90 ratings satisfactionRate overdueNow
  }
}"""
TRANSITION = """
mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { id status } userErrors { code field message } }
}"""
ROUTE = """
mutation($input: CaseRouteInput!) {
  caseRoute(input: $input) { case { id status } userErrors { code field message } }
}"""
RATE = """
mutation($input: CaseRateInput!) { caseRate(input: $input) { userErrors { code field message } } }"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The history spans seven weeks of moved clock; tokens must outlive that.
    return make_settings(media_root=tmp_path / "media", access_token_seconds=90 * 86400)


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> None:
    """Move the clock to a time of day in the city (Asia/Shanghai, UTC+8, no daylight saving)."""
    moment = datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)
    clock.set_clock(lambda: moment)


class City:
    """The people of the seeded month and the steps they take over HTTP; staff act by username."""

    def __init__(self, client: httpx.AsyncClient, staff: dict[str, str]) -> None:
        self.client = client
        self.staff = staff

    async def open(self, resident_token: str, category: str, place: int) -> str:
        # Cases a kilometre apart, so none is grouped with another as a duplicate.
        where = (30.20 + 0.01 * place, 120.10)
        return (await submit_ok(self.client, resident_token, report_input(category, where)))["case"]["id"]

    async def step(self, who: str, case_id: str, action: str, **extra: Any) -> None:
        """`who` is a staff username or a resident's token."""
        variables = {"input": {"caseId": case_id, "action": action, **extra}}
        token = self.staff.get(who, who)
        result = (await gql_data(self.client, TRANSITION, variables, token=token))["caseTransition"]
        assert result["userErrors"] == [], (action, result["userErrors"])

    async def resolve(self, who: str, case_id: str, photo: bool = False) -> None:
        await self.step(who, case_id, "START")
        photos = [await new_photo((await User.get(username=who)).id)] if photo else []
        await self.step(who, case_id, "RESOLVE", note="Handled", photoIds=photos)

    async def reroute(self, case_id: str, department: str) -> None:
        variables = {"input": {"caseId": case_id, "departmentCode": department}}
        token = self.staff["dispatcher"]
        result = (await gql_data(self.client, ROUTE, variables, token=token))["caseRoute"]
        assert result["userErrors"] == [], result["userErrors"]

    async def rate(self, resident_token: str, case_id: str, rating: int) -> None:
        variables = {"input": {"caseId": case_id, "rating": rating}}
        result = (await gql_data(self.client, RATE, variables, token=resident_token))["caseRate"]
        assert result["userErrors"] == [], result["userErrors"]


async def statistics(client: httpx.AsyncClient, token: str, **given: Any) -> list[dict[str, Any]]:
    return (await gql_data(client, STATISTICS, {"input": {**MARCH, **given}}, token=token))["caseStatistics"]


async def refused(client: httpx.AsyncClient, token: str | None, **given: Any) -> str:
    body = await gql(client, STATISTICS, {"input": {**MARCH, **given}}, token=token)
    assert body["data"] is None and len(body["errors"]) == 1, body
    return body["errors"][0]["extensions"]["code"]


def by_department(rows: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {(None if r["total"] else r["department"]["code"]): r for r in rows}


def figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("total", "department", "category")}


@pytest.fixture
async def month(client: httpx.AsyncClient) -> City:
    """March 2026 in the demo city, every step at a time of day in Asia/Shanghai.

    Policy hotline_5wd for both categories: respond within 1 working day, resolve within 5 working
    days of dispatch (working hours 09:00-12:00 and 13:30-18:00, Monday to Friday; no holiday in March).

    case  category         story (P = police-west, U = urban-west, S = sanitation)
    A0    noise.neighbour  routed to P Sat 28 Feb 23:30 (before the month); accepted at exactly
                           Sun 1 Mar 00:00 (the month's first instant; 16:00 UTC on 28 Feb); left ACCEPTED
    A     noise.neighbour  routed to P Mon 2 Mar 10:00; accepted 11:00 (due Tue 3 Mar: on time);
                           resolved Wed 4 Mar 10:00 (48 h; due Mon 9 Mar: on time); confirmed Thu 5 Mar;
                           rated 5 on Thu 5 Mar
    B     noise.neighbour  routed to P Mon 2 Mar 10:00; accepted Thu 5 Mar 10:00 (due Tue 3 Mar: late);
                           resolved Mon 16 Mar 10:00 (336 h; due Mon 9 Mar: late); rated 2 on Tue 17 Mar;
                           closed by the system on Wed 25 Mar
    C     noise.neighbour  routed to P Mon 9 Mar 10:00; P returns it 11:00 (on time); the dispatcher
                           re-routes it to U 14:00; U accepts Tue 10 Mar 09:30 (due Tue 10 Mar 14:00:
                           on time); resolved Wed 11 Mar 14:00 (52 h from the first dispatch; due about
                           Mon 16 Mar: on time); the resident disputes Thu 12 Mar 10:00 (the clock
                           restarts); resolved again Fri 13 Mar 10:00 (24 h; due Thu 19 Mar: on time);
                           confirmed Sat 14 Mar
    D     noise.neighbour  routed to P Fri 20 Mar 10:00; accepted 10:30 (on time); IN_PROGRESS since
    E     noise.neighbour  routed to P Tue 31 Mar 23:30 (15:30 UTC, inside the month); accepted at
                           exactly Wed 1 Apr 00:00 (outside: the period's end is exclusive)
    F     waste.           routed to S Tue 3 Mar 10:00; accepted 10:15 (on time); resolved Thu 5 Mar
          overflowing_bins 10:00 (48 h, on time); confirmed Fri 6 Mar; rated 4 on Fri 6 Mar

    The statistics are asked for on Mon 20 Apr: A0, D and E are overdue then (their resolution due
    times, early March, late March and early April, have passed), all three with P.
    """
    staff = ("police.west", "urban.west", "sanitation.staff", "dispatcher")
    city = City(client, {name: await demo_sign_in(client, name) for name in staff})
    residents = [(await resident(client))[0] for _ in range(7)]
    a0, a, b, c, d, e, f = residents

    at(2026, 2, 28, 23, 30)
    case_a0 = await city.open(a0, "noise.neighbour", 0)
    at(2026, 3, 1, 0, 0)
    await city.step("police.west", case_a0, "ACCEPT")

    at(2026, 3, 2, 10)
    case_a = await city.open(a, "noise.neighbour", 1)
    case_b = await city.open(b, "noise.neighbour", 2)
    at(2026, 3, 2, 11)
    await city.step("police.west", case_a, "ACCEPT")

    at(2026, 3, 3, 10)
    case_f = await city.open(f, "waste.overflowing_bins", 3)
    at(2026, 3, 3, 10, 15)
    await city.step("sanitation.staff", case_f, "ACCEPT")

    at(2026, 3, 4, 10)
    await city.resolve("police.west", case_a)
    at(2026, 3, 5, 10)
    await city.step(a, case_a, "CONFIRM")
    await city.rate(a, case_a, 5)
    await city.step("police.west", case_b, "ACCEPT")
    await city.resolve("sanitation.staff", case_f, photo=True)
    at(2026, 3, 6, 10)
    await city.step(f, case_f, "CONFIRM")
    await city.rate(f, case_f, 4)

    at(2026, 3, 9, 10)
    case_c = await city.open(c, "noise.neighbour", 4)
    at(2026, 3, 9, 11)
    await city.step("police.west", case_c, "RETURN", reason="Not ours: a shop's loudspeaker")
    at(2026, 3, 9, 14)
    await city.reroute(case_c, "urban-west")
    at(2026, 3, 10, 9, 30)
    await city.step("urban.west", case_c, "ACCEPT")
    at(2026, 3, 11, 14)
    await city.resolve("urban.west", case_c)
    at(2026, 3, 12, 10)
    await city.step(c, case_c, "DISPUTE", reason="Still loud every night")
    at(2026, 3, 13, 10)
    await city.resolve("urban.west", case_c)
    at(2026, 3, 14, 10)
    await city.step(c, case_c, "CONFIRM")

    at(2026, 3, 16, 10)
    await city.resolve("police.west", case_b)
    at(2026, 3, 17, 10)
    await city.rate(b, case_b, 2)

    at(2026, 3, 20, 10)
    case_d = await city.open(d, "noise.neighbour", 5)
    at(2026, 3, 20, 10, 30)
    await city.step("police.west", case_d, "ACCEPT")
    await city.step("police.west", case_d, "START")

    at(2026, 3, 25, 10)  # the quiet period is over: the system closes B
    await transition(db_id(case_b), None, Step(Action.AUTO_CLOSE))

    at(2026, 3, 31, 23, 30)
    case_e = await city.open(e, "noise.neighbour", 6)
    at(2026, 4, 1, 0, 0)
    await city.step("police.west", case_e, "ACCEPT")

    at(2026, 4, 20, 10)
    return city


async def test_done_when_the_seeded_month_matches_the_hand_computed_figures(
    client: httpx.AsyncClient, month: City
) -> None:
    dispatcher = month.staff["dispatcher"]
    rows = by_department(await statistics(client, dispatcher))
    # Rows in department id order (the demo seeds urban-west before police-west), the total last.
    assert list(rows) == ["urban-west", "police-west", "sanitation", None]
    # P: received A B C D E (A0's route was in February); accepted A0 A B D (E's accept is in April);
    # returned C; resolved A B; closed A (confirm) B (auto_close).
    # Responses A0 A C(return) D on time, B late: 4/5. Resolutions A on time, B late: 1/2.
    # Handling 48 h and 336 h: median (48 + 336) / 2 = 192, p90 48 + 0.9 * (336 - 48) = 307.2.
    # Ratings A 5, B 2: 1/2 satisfied. Overdue now A0 D E.
    assert figures(rows["police-west"]) == {
        "received": 5, "accepted": 4, "returned": 1, "resolved": 2, "closed": 2, "reopened": 0,
        "responses": 5, "onTimeAcceptanceRate": 0.8, "resolutions": 2, "onTimeResolutionRate": 0.5,
        "handlingHoursMedian": pytest.approx(192), "handlingHoursP90": pytest.approx(307.2),
        "ratings": 2, "satisfactionRate": 0.5, "overdueNow": 3,
    }  # fmt: skip
    # U received C by the re-route and accepted it on time; resolved it twice on time (52 h, 24 h:
    # median 38, p90 24 + 0.9 * 28 = 49.2); the dispute reopened it; confirmed; nobody rated it.
    assert figures(rows["urban-west"]) == {
        "received": 1, "accepted": 1, "returned": 0, "resolved": 1, "closed": 1, "reopened": 1,
        "responses": 1, "onTimeAcceptanceRate": 1.0, "resolutions": 2, "onTimeResolutionRate": 1.0,
        "handlingHoursMedian": pytest.approx(38), "handlingHoursP90": pytest.approx(49.2),
        "ratings": 0, "satisfactionRate": None, "overdueNow": 0,
    }  # fmt: skip
    assert figures(rows["sanitation"]) == {
        "received": 1, "accepted": 1, "returned": 0, "resolved": 1, "closed": 1, "reopened": 0,
        "responses": 1, "onTimeAcceptanceRate": 1.0, "resolutions": 1, "onTimeResolutionRate": 1.0,
        "handlingHoursMedian": pytest.approx(48), "handlingHoursP90": pytest.approx(48),
        "ratings": 1, "satisfactionRate": 1.0, "overdueNow": 0,
    }  # fmt: skip
    # The total counts C once although P and U both received it: received A B C D E F = 6, not 7.
    # Accepted A0 A B C D F; resolved A B C F; closed A B C F; responses 5 + 1 + 1 = 7, 6 on time;
    # resolutions 2 + 2 + 1 = 5, 4 on time. Handling 24 48 48 52 336: median 48,
    # p90 at rank 0.9 * 4 = 3.6: 52 + 0.6 * (336 - 52) = 222.4. Ratings 5 2 4: 2/3.
    assert figures(rows[None]) == {
        "received": 6, "accepted": 6, "returned": 1, "resolved": 4, "closed": 4, "reopened": 1,
        "responses": 7, "onTimeAcceptanceRate": pytest.approx(6 / 7), "resolutions": 5,
        "onTimeResolutionRate": 0.8, "handlingHoursMedian": pytest.approx(48),
        "handlingHoursP90": pytest.approx(222.4), "ratings": 3, "satisfactionRate": pytest.approx(2 / 3),
        "overdueNow": 3,
    }  # fmt: skip


async def test_grouped_by_category_and_by_both(client: httpx.AsyncClient, month: City) -> None:
    dispatcher = month.staff["dispatcher"]
    rows = await statistics(client, dispatcher, groupBy=["CATEGORY"])
    by_category = {(None if r["total"] else r["category"]["code"]): r for r in rows}
    assert [r["department"] for r in rows[:-1]] == [None, None]
    # noise.neighbour: A0 A B C D E. Received A B C D E (C once), accepted A0 A B C D, returned C,
    # resolved A B C, closed A B C, reopened C; responses 6 (B late), resolutions 4 (B late).
    # Handling 24 48 52 336: median 50, p90 at rank 2.7: 52 + 0.7 * 284 = 250.8. Ratings 5 and 2.
    assert figures(by_category["noise.neighbour"]) == {
        "received": 5, "accepted": 5, "returned": 1, "resolved": 3, "closed": 3, "reopened": 1,
        "responses": 6, "onTimeAcceptanceRate": pytest.approx(5 / 6), "resolutions": 4,
        "onTimeResolutionRate": 0.75, "handlingHoursMedian": pytest.approx(50),
        "handlingHoursP90": pytest.approx(250.8), "ratings": 2, "satisfactionRate": 0.5, "overdueNow": 3,
    }  # fmt: skip
    assert by_category["waste.overflowing_bins"]["received"] == 1
    # Every case has one category, so the total is the same whatever the grouping.
    total = figures(by_category[None])
    assert total == figures((await statistics(client, dispatcher, groupBy=[]))[0])
    assert total["received"] == 6 and total["handlingHoursP90"] == pytest.approx(222.4)

    both = await statistics(client, dispatcher, groupBy=["DEPARTMENT", "CATEGORY"])
    keys = [(r["department"]["code"], r["category"]["code"]) for r in both[:-1]]
    assert keys == [
        ("urban-west", "noise.neighbour"),
        ("police-west", "noise.neighbour"),
        ("sanitation", "waste.overflowing_bins"),
    ]
    assert figures(both[-1]) == total


async def test_filters_by_department_and_category(client: httpx.AsyncClient, month: City) -> None:
    dispatcher = month.staff["dispatcher"]
    urban = relay_id("Department", (await Department.get(code="urban-west")).id)
    rows = await statistics(client, dispatcher, departmentId=urban)
    assert [r["department"]["code"] for r in rows] == ["urban-west", "urban-west"]  # its row, its total
    assert figures(rows[0]) == figures(rows[1]) and rows[1]["received"] == 1

    waste = relay_id("Category", (await Category.get(code="waste.overflowing_bins")).id)
    rows = await statistics(client, dispatcher, categoryId=waste)
    assert [(r["department"] or {}).get("code") for r in rows] == ["sanitation", None]
    assert rows[-1]["category"]["code"] == "waste.overflowing_bins"
    assert (rows[-1]["received"], rows[-1]["ratings"], rows[-1]["satisfactionRate"]) == (1, 1, 1.0)


async def test_period_edges_and_zero_denominators(client: httpx.AsyncClient, month: City) -> None:
    dispatcher = month.staff["dispatcher"]
    # February holds only A0's route (23:30 on the 28th, local time): received 1, nothing to rate.
    february = by_department(
        await statistics(client, dispatcher, **{"from": "2026-02-01", "to": "2026-03-01"})
    )
    assert figures(february[None]) == {
        "received": 1, "accepted": 0, "returned": 0, "resolved": 0, "closed": 0, "reopened": 0,
        "responses": 0, "onTimeAcceptanceRate": None, "resolutions": 0, "onTimeResolutionRate": None,
        "handlingHoursMedian": None, "handlingHoursP90": None, "ratings": 0, "satisfactionRate": None,
        "overdueNow": 3,  # overdue is now, whatever the period
    }  # fmt: skip
    # April 1st holds only E's accept, at its very first instant.
    april = by_department(await statistics(client, dispatcher, **{"from": "2026-04-01", "to": "2026-04-02"}))
    assert (april[None]["accepted"], april[None]["responses"], april[None]["received"]) == (1, 1, 0)
    # A year with nothing at all: only the overdue cases give P a row.
    empty = await statistics(client, dispatcher, **{"from": "2025-01-01", "to": "2026-01-01"})
    assert [r["department"]["code"] for r in empty[:-1]] == ["police-west"]
    assert empty[-1]["received"] == 0 and empty[-1]["onTimeResolutionRate"] is None


async def test_who_may_ask(client: httpx.AsyncClient, month: City) -> None:
    police = month.staff["police.west"]
    # Staff get their own department without asking, and only it.
    rows = await statistics(client, police, groupBy=["DEPARTMENT", "CATEGORY"])
    assert {r["department"]["code"] for r in rows} == {"police-west"}
    assert rows[-1]["received"] == 5
    urban = relay_id("Department", (await Department.get(code="urban-west")).id)
    assert await refused(client, police, departmentId=urban) == "FORBIDDEN"
    own = relay_id("Department", (await Department.get(code="police-west")).id)
    assert (await statistics(client, police, departmentId=own))[-1]["received"] == 5
    assert (await statistics(client, month.staff["dispatcher"], departmentId=own))[-1]["received"] == 5
    admin = await demo_sign_in(client, "admin")
    assert (await statistics(client, admin, groupBy=[]))[0]["received"] == 6

    citizen, _ = await resident(client)
    chief = await demo_sign_in(client, "chief.county")
    assert await refused(client, citizen) == "FORBIDDEN"
    assert await refused(client, chief) == "FORBIDDEN"
    assert await refused(client, None) == "UNAUTHENTICATED"


async def test_bad_input_is_refused(client: httpx.AsyncClient) -> None:
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert await refused(client, dispatcher, **{"from": "2026-03-01", "to": "2026-03-01"}) == "INVALID"
    assert await refused(client, dispatcher, **{"from": "2026-01-01", "to": "2027-03-01"}) == "INVALID"
    case_like = relay_id("Case", 1)
    assert await refused(client, dispatcher, departmentId=case_like) == "INVALID"
    assert await refused(client, dispatcher, categoryId="not an id") == "INVALID"
    body = await gql(client, STATISTICS, {"input": {**MARCH, "groupBy": ["WEEK"]}}, token=dispatcher)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
