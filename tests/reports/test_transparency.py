"""Public transparency over HTTP, asked anonymously: each department's monthly figures and the public
handling of cases, on a seeded set of cases whose figures are worked out by hand in the comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.models import User
from reports.models import Report
from server.settings import Settings
from tests.conftest import make_settings
from tests.graphql_client import gql, gql_data
from tests.reports.helpers import (
    OCEAN,
    db_id,
    demo_sign_in,
    public_case_id,
    report_input,
    resident,
    submit_ok,
)
from tests.reports.test_statistics import City, at

pytestmark = pytest.mark.usefixtures("demo")

TRANSPARENCY = """
query($from: String!, $to: String!) {
  transparency(fromMonth: $from, toMonth: $to) {
    month department { code name } received resolved resolutions resolvedOnTime onTimeResolutionRate
    ratings ratingAverage satisfactionRate
  }
}"""
PUBLIC_CASE = """
query($id: ID!) {
  node(id: $id) {
    ... on PublicCase { reference status resolvedOn closedOn resolvedOnTime resolutionSummary statusNotes }
  }
}"""
NOTE = "Spoke to Mr Wang Wei, 13800138000, at his flat"
PHONE = "13900139000"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The history spans two months of moved clock; tokens must outlive that.
    return make_settings(media_root=tmp_path / "media", access_token_seconds=90 * 86400)


class Seeded:
    def __init__(self, city: City, cases: dict[str, str]) -> None:
        self.city = city
        self.cases = cases


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> Seeded:
    """February to April 2026 in the demo city, every step at a time of day in Asia/Shanghai (UTC+8).

    P = police-west, S = sanitation; policy hotline_5wd (resolve within 5 working days of dispatch).

    case  story
    J     P, routed Fri 27 Feb 10:00, accepted 10:30, resolved 15:00 (on time); rated 3 on Sat 28 Feb
          23:30 (15:30 UTC: February either way)
    G     P, routed Sun 1 Mar 03:00 (28 Feb 19:00 UTC: March in the city, February in UTC); accepted and
          resolved Mon 2 Mar (on time), note naming the resident; confirmed Mon 2 Mar 12:00; rated 5 on
          Wed 1 Apr 07:00 (31 Mar 23:00 UTC: April in the city)
    H     P, routed Mon 2 Mar 10:00, accepted 11:00; resolved Tue 31 Mar 23:00 (due Mon 9 Mar: late);
          rated 2 on Thu 2 Apr
    I     S, routed Tue 3 Mar 10:00, accepted 10:15; resolved Wed 1 Apr 06:00 (31 Mar 22:00 UTC: April
          in the city; due Tue 10 Mar: late); rated 4 on Wed 1 Apr 09:00
    K     P, routed Thu 5 Mar 10:00, rejected by the dispatcher 11:00: not public (P still received it)
    T     outside every jurisdiction Thu 5 Mar 12:00: TRIAGE, never routed, not public
    L     P, routed Fri 10 Apr 10:00, accepted and started 10:30: IN_PROGRESS
    J     disputed by its resident on Wed 15 Apr 10:00: REOPENED
    """
    staff = ("police.west", "sanitation.staff", "dispatcher")
    city = City(client, {name: await demo_sign_in(client, name) for name in staff})
    j, g, h, i, k, t, l_ = [(await resident(client))[0] for _ in range(7)]
    cases: dict[str, str] = {}

    at(2026, 2, 27, 10)
    cases["J"] = await city.open(j, "noise.neighbour", 0)
    at(2026, 2, 27, 10, 30)
    await city.step("police.west", cases["J"], "ACCEPT")
    at(2026, 2, 27, 15)
    await city.resolve("police.west", cases["J"])
    at(2026, 2, 28, 23, 30)
    await city.rate(j, cases["J"], 3)

    at(2026, 3, 1, 3)
    cases["G"] = await city.open(g, "noise.neighbour", 1)
    at(2026, 3, 2, 10)
    await city.step("police.west", cases["G"], "ACCEPT")
    cases["H"] = await city.open(h, "noise.neighbour", 2)
    at(2026, 3, 2, 11)
    await city.step("police.west", cases["G"], "START")
    await city.step("police.west", cases["G"], "RESOLVE", note=NOTE)
    await city.step("police.west", cases["H"], "ACCEPT")
    at(2026, 3, 2, 12)
    await city.step(g, cases["G"], "CONFIRM")

    at(2026, 3, 3, 10)
    cases["I"] = await city.open(i, "waste.overflowing_bins", 3)
    at(2026, 3, 3, 10, 15)
    await city.step("sanitation.staff", cases["I"], "ACCEPT")

    at(2026, 3, 5, 10)
    cases["K"] = await city.open(k, "noise.neighbour", 4)
    at(2026, 3, 5, 11)
    await city.step("dispatcher", cases["K"], "REJECT", reason="Test message from a prankster")
    at(2026, 3, 5, 12)
    triaged = await submit_ok(client, t, report_input("noise.neighbour", OCEAN))
    cases["T"] = triaged["case"]["id"]
    assert triaged["case"]["status"] == "TRIAGE"

    at(2026, 3, 31, 23)
    await city.resolve("police.west", cases["H"])
    at(2026, 4, 1, 6)
    await city.resolve("sanitation.staff", cases["I"], photo=True)
    at(2026, 4, 1, 7)
    await city.rate(g, cases["G"], 5)
    at(2026, 4, 1, 9)
    await city.rate(i, cases["I"], 4)
    at(2026, 4, 2, 10)
    await city.rate(h, cases["H"], 2)

    at(2026, 4, 10, 10)
    cases["L"] = await city.open(l_, "noise.neighbour", 5)
    at(2026, 4, 10, 10, 30)
    await city.step("police.west", cases["L"], "ACCEPT")
    await city.step("police.west", cases["L"], "START")
    at(2026, 4, 15, 10)
    await city.step(j, cases["J"], "DISPUTE", reason="Still loud")

    # Personal details that must never reach the public: a reporter's phone number.
    reporter = await Report.get(case_id=db_id(cases["G"]))
    await User.filter(id=reporter.reporter_id).update(phone=PHONE)
    at(2026, 4, 20, 10)
    return Seeded(city, cases)


async def transparency(client: httpx.AsyncClient, start: str, end: str) -> list[dict[str, Any]]:
    return (await gql_data(client, TRANSPARENCY, {"from": start, "to": end}))["transparency"]


def figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("month", "department")}


ZERO = {
    "received": 0, "resolved": 0, "resolutions": 0, "resolvedOnTime": 0, "onTimeResolutionRate": None,
    "ratings": 0, "ratingAverage": None, "satisfactionRate": None,
}  # fmt: skip


async def test_monthly_figures_match_the_hand_computed_ones(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    rows = await transparency(client, "2026-02", "2026-04")
    codes = sorted({r["department"]["code"] for r in rows})
    # Every department in every month, months in order, departments by code within a month.
    assert [(r["month"], r["department"]["code"]) for r in rows] == [
        (month, code) for month in ("2026-02", "2026-03", "2026-04") for code in codes
    ]
    table = {(r["month"], r["department"]["code"]): figures(r) for r in rows}
    # February: J received, resolved on time, rated 3 (not satisfied).
    assert table["2026-02", "police-west"] == {
        **ZERO, "received": 1, "resolved": 1, "resolutions": 1, "resolvedOnTime": 1, "onTimeResolutionRate": 1.0,
        "ratings": 1, "ratingAverage": 3.0, "satisfactionRate": 0.0,
    }  # fmt: skip
    # March: G (its route at 03:00 on the 1st, city time), H and the rejected K received; G on time,
    # H late. No rating in March: G's 5 came at 07:00 on 1 April, city time.
    assert table["2026-03", "police-west"] == {
        **ZERO, "received": 3, "resolved": 2, "resolutions": 2, "resolvedOnTime": 1, "onTimeResolutionRate": 0.5,
    }  # fmt: skip
    assert table["2026-03", "sanitation"] == {**ZERO, "received": 1}
    # April: L received; ratings 5 (G) and 2 (H) for P; I resolved late at 06:00 on 1 April, city
    # time, rated 4. J's dispute takes nothing back from February.
    assert table["2026-04", "police-west"] == {
        **ZERO, "received": 1, "ratings": 2, "ratingAverage": 3.5, "satisfactionRate": 0.5,
    }  # fmt: skip
    assert table["2026-04", "sanitation"] == {
        **ZERO, "resolved": 1, "resolutions": 1, "onTimeResolutionRate": 0.0,
        "ratings": 1, "ratingAverage": 4.0, "satisfactionRate": 1.0,
    }  # fmt: skip
    busy = {"police-west", "sanitation"}
    assert all(figures(r) == ZERO for r in rows if r["department"]["code"] not in busy)

    # The managers' statistics for the same month agree (one definition of each figure).
    dispatcher = seeded.city.staff["dispatcher"]
    query = "query($i: CaseStatisticsInput!) { caseStatistics(input: $i) { total department { code } received resolved ratings } }"
    march = {"from": "2026-03-01", "to": "2026-04-01"}
    managers = (await gql_data(client, query, {"i": march}, token=dispatcher))["caseStatistics"]
    police = next(r for r in managers if not r["total"] and r["department"]["code"] == "police-west")
    assert (police["received"], police["resolved"], police["ratings"]) == (3, 2, 0)

    # One month alone gives the same rows as within a range.
    alone = await transparency(client, "2026-04", "2026-04")
    assert {r["department"]["code"]: figures(r) for r in alone} == {
        code: table["2026-04", code] for code in codes
    }


async def test_public_case_handling(client: httpx.AsyncClient, seeded: Seeded) -> None:
    async def public(case: str) -> dict[str, Any] | None:
        node: dict[str, Any] | None = (
            await gql_data(client, PUBLIC_CASE, {"id": public_case_id(seeded.cases[case])})
        )["node"]
        return node

    g = await public("G")
    assert g is not None and g["status"] == "CLOSED"
    # Received on 1 March in the city (28 February in UTC); resolved and closed on 2 March.
    assert (g["resolvedOn"], g["closedOn"], g["resolvedOnTime"]) == ("2026-03-02", "2026-03-02", True)
    # The deadline: five working days from Monday 2 March 09:00 (dispatched on a Sunday night).
    summary = "Resolved on 2026-03-02, within its deadline of 2026-03-06. Closed on 2026-03-02."
    assert g["resolutionSummary"] == summary
    assert g["statusNotes"] == (
        f"Received on 2026-03-01. Assigned to the responsible department on 2026-03-01. {summary}"
    )
    i = await public("I")
    assert i is not None
    # Resolved at 06:00 on 1 April in the city (31 March in UTC), after its 10 March deadline; open still.
    assert (i["status"], i["resolvedOn"], i["closedOn"], i["resolvedOnTime"]) == (
        "RESOLVED",
        "2026-04-01",
        None,
        False,
    )
    assert i["resolutionSummary"] == "Resolved on 2026-04-01, after its deadline of 2026-03-10."
    # Not public: rejected after routing, and never routed. Answered like missing cases.
    assert await public("K") is None
    assert await public("T") is None
    # The map does not list them either.
    bbox = {"minLatitude": 30.1, "minLongitude": 120.0, "maxLatitude": 30.4, "maxLongitude": 120.3}
    listed = await gql_data(
        client,
        "query($b: BBoxInput!) { publicCases(bbox: $b) { edges { node { reference } } } }",
        {"b": bbox},
    )
    references = {e["node"]["reference"] for e in listed["publicCases"]["edges"]}
    assert g["reference"] in references and len(references) == 5  # J G H I L

    # Open cases say where they stand, and a reopened one is no longer resolved.
    in_progress = await public("L")
    assert in_progress is not None and in_progress["statusNotes"] == (
        "Received on 2026-04-10. Assigned to the responsible department on 2026-04-10. "
        "Being handled by the responsible department."
    )
    assert (in_progress["resolvedOn"], in_progress["resolvedOnTime"], in_progress["resolutionSummary"]) == (
        None, None, None
    )  # fmt: skip
    reopened = await public("J")
    assert reopened is not None and (reopened["status"], reopened["resolvedOn"]) == ("REOPENED", None)
    assert reopened["statusNotes"].endswith("Reopened for further work on 2026-04-15.")


async def test_nothing_personal_in_the_public_output(client: httpx.AsyncClient, seeded: Seeded) -> None:
    bodies = [await gql(client, TRANSPARENCY, {"from": "2026-02", "to": "2026-04"})]
    for case in seeded.cases.values():
        bodies.append(await gql(client, PUBLIC_CASE, {"id": public_case_id(case)}))
    text = json.dumps(bodies, ensure_ascii=False)
    personal = {NOTE, "Wang", "13800138000", PHONE, "Pile driving", "prankster"}
    for user in await User.all():
        personal |= {v for v in (user.username, user.display_name, user.phone) if v}
    assert not [word for word in personal if word in text], text


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-3", "2026-04", "fromMonth"),
        ("2026-13", "2026-04", "fromMonth"),
        ("March", "2026-04", "fromMonth"),
        ("", "2026-04", "fromMonth"),
        ("2026-03-01", "2026-04", "fromMonth"),
        ("0000-01", "2026-04", "fromMonth"),
        ("\uff12\uff10\uff12\uff16-03", "2026-04", "fromMonth"),  # full-width digits
        ("2026-03", "2026-00", "toMonth"),
        ("2026-04", "2026-03", "toMonth"),  # the end before the start
        ("2024-01", "2026-01", "toMonth"),  # 25 months
    ],
)
async def test_bad_months_are_refused(client: httpx.AsyncClient, start: str, end: str, field: str) -> None:
    body = await gql(client, TRANSPARENCY, {"from": start, "to": end})
    assert body["data"] is None and len(body["errors"]) == 1, body
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "field": [field]}


async def test_odd_requests_get_typed_errors(client: httpx.AsyncClient) -> None:
    assert len(await transparency(client, "2024-02", "2026-01")) > 0  # 24 months: the most allowed
    for edge in ("1900-01", "2999-12"):  # the first and last months anyone may ask about
        assert {figures(r)["received"] for r in await transparency(client, edge, edge)} == {0}
    too_long = await gql(client, TRANSPARENCY, {"from": "2026-03" * 100, "to": "2026-04"})
    assert too_long["errors"][0]["extensions"]["code"] == "INVALID"
    missing = await gql(client, '{ transparency(fromMonth: "2026-03") { month } }')
    assert missing["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    wrong_type = await gql(client, TRANSPARENCY, {"from": 202603, "to": "2026-04"})
    assert wrong_type["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
