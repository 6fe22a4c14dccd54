"""The chief office's figures and assessment over HTTP: a quarter of history made through the public API
(GPX patrols, observations, hand-offs worked to closure, residents' reports), and the figures and
scores checked against values worked out by hand in the comments."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from exports.jobs import ExportRunner
from identity.models import Role, User
from identity.service import create_user
from kernel import clock
from patrols.compliance import upsert_rules
from reports.models import Department
from server.exports_http import export_config
from server.seed import load_demo_city, seed_demo
from server.settings import Settings
from tests.conftest import make_settings
from tests.exports.test_exports import read_csv
from tests.graphql_client import gql, gql_data, new_resident, sign_in
from tests.patrols.test_patrols_api import ESCALATE, GPX_IMPORT, OBSERVE, gpx, walk
from tests.reports.helpers import new_photo, report_input, submit_ok

CITY = ZoneInfo("Asia/Shanghai")
PASSWORD = load_demo_city()["password"]

FIGURES = """query($period: String!, $region: String, $groupBy: [OfficeDimension!], $digits: Int) {
  officeFigures(period: $period, region: $region, groupBy: $groupBy, regionDigits: $digits) {
    period periodKind firstDay lastDay method { code items { metric weight target source } }
    rows { ...f } total { ...f } } }
fragment f on OfficeFigureRow { region level area { code } areas patrolsRequired patrolsDone patrolRate
  problemsFound handedOff handledOnSpot closed closedOnTime solved closureRate onTimeClosureRate complaints
  assessment { methodCode score items { metric value target weight score explanation } } }"""
METHOD_SET = """mutation($input: OfficeAssessmentMethodSetInput!) { officeAssessmentMethodSet(input: $input) {
  method { code items { metric direction weight target } } userErrors { code field message } } }"""
METHOD_RESET = """mutation { officeAssessmentMethodReset(input: {confirm: true}) {
  method { code } userErrors { code field message } } }"""
TRANSITION = """mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { id status } userErrors { code field message } } }"""
EXPORT = """mutation($input: ExportStartInput!) { exportStart(input: $input) {
  export { id status } userErrors { code field message } } }"""
EXPORT_NODE = "query($id: ID!) { node(id: $id) { ... on Export { status downloadUrl } } }"

# The village chief's rule for this test: once every 旬 (DEKAD), at least 10 min and 1 km. The demo's
# other rules stay: county chiefs once a quarter (≥10 min, ≥1 km, over all their rivers together),
# lake and forest township chiefs once a month.
VILLAGE_DEKAD = {
    "code": "DEMO-RIVER-VILLAGE",
    "region_code": "999900",
    "chief_level": "VILLAGE",
    "chief_kind": "RIVER",
    "period": "DEKAD",
    "min_count": 1,
    "min_duration_min": 10,
    "min_distance_km": 1,
    "source": "test: Guangzhou 2021 (every 旬, >=10 min, >=1 km)",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The history spans four months of moved clock; tokens must outlive that.
    return make_settings(
        media_root=tmp_path / "media", export_root=tmp_path / "exports", access_token_seconds=365 * 86400
    )


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """Move the clock to a local time in 2026 (Asia/Shanghai) and answer it."""
    moment = datetime(2026, month, day, hour, minute, tzinfo=CITY).astimezone(UTC)
    clock.set_clock(lambda: moment)
    return moment


class History:
    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str], areas: dict[str, Any]) -> None:
        self.client, self.tokens, self.areas = client, tokens, areas

    async def patrol(self, who: str, area: str, month: int, day: int, seconds: int) -> tuple[str, list[dict]]:
        """A GPX patrol walked at 1 Hz along the river from 09:00, imported an hour after it ended."""
        t0 = datetime(2026, month, day, 9, tzinfo=CITY).astimezone(UTC)
        points = walk(self.areas[area]["geometry"]["coordinates"], seconds, random.Random(day), t0)
        clock.set_clock(lambda: t0 + timedelta(seconds=seconds, hours=1))
        text = gpx([(p["latitude"], p["longitude"], p["t"]) for p in points])
        variables = {"input": {"clientId": str(uuid.uuid4()), "areaId": self.areas[area]["id"], "mode": "FOOT",
                               "gpx": text}}  # fmt: skip
        done = (await gql_data(self.client, GPX_IMPORT, variables, token=self.tokens[who]))["patrolGpxImport"]
        assert done["userErrors"] == [], done
        return done["patrol"]["id"], points

    async def observe(
        self, who: str, patrol: tuple[str, list[dict]], index: int, hand_off: bool
    ) -> str | None:
        """An observation of floating rubbish at the walk's `index`th point; handed off, its case id."""
        patrol_id, points = patrol
        seen = {"clientId": str(uuid.uuid4()), "patrolId": patrol_id, "category": "FLOATING_RUBBISH",
                "location": {"latitude": points[index]["latitude"], "longitude": points[index]["longitude"]},
                "observedAt": points[index]["t"], "note": ""}  # fmt: skip
        done = await gql_data(self.client, OBSERVE, {"input": seen}, token=self.tokens[who])
        observation = done["patrolObservationRecord"]
        assert observation["userErrors"] == [], observation
        if not hand_off:
            return None
        variables = {"input": {"observationId": observation["observation"]["id"]}}
        escalated = await gql_data(self.client, ESCALATE, variables, token=self.tokens[who])
        assert escalated["patrolObservationEscalate"]["userErrors"] == []
        query = "{ myReports(first: 1) { nodes { case { id department { code } } } } }"
        [mine] = (await gql_data(self.client, query, token=self.tokens[who]))["myReports"]["nodes"]
        assert mine["case"]["department"]["code"] == "river-office"
        return str(mine["case"]["id"])

    async def step(self, who: str, case_id: str, action: str, **extra: Any) -> None:
        variables = {"input": {"caseId": case_id, "action": action, **extra}}
        done = (await gql_data(self.client, TRANSITION, variables, token=self.tokens[who]))["caseTransition"]
        assert done["userErrors"] == [], (action, done["userErrors"])

    async def work_to_closure(self, case_id: str, resolved: tuple[int, int], reporter: str) -> None:
        """The office staff accept, start and resolve (with an after-photo) on `resolved` (month, day)
        at 10:00; the chief who handed it off confirms the next day: CLOSED."""
        at(*resolved, 10)
        await self.step("office.staff", case_id, "ACCEPT")
        await self.step("office.staff", case_id, "START")
        photo = await new_photo((await User.get(username="office.staff")).id)
        await self.step("office.staff", case_id, "RESOLVE", note="cleared", photoIds=[photo])
        at(resolved[0], resolved[1] + 1, 10)
        await self.step(reporter, case_id, "CONFIRM")


@pytest.fixture
async def quarter(client: httpx.AsyncClient) -> dict[str, str]:
    """The second quarter of 2026 (1 April - 30 June, local dates) in the demo city.

    Patrols (walks at 1.5-2.3 m/s: 700 s is about 1.3 km and 11.7 min; 300 s about 0.6 km and 5 min):
      P5  village chief, R-QH-01, Sat 28 Mar (Q1): 700 s; O5 handed off  -> outside the quarter
      P1  village chief, R-QH-01, Fri 3 Apr (April 旬 1): 700 s, counts; O1 handed off, resolved the
          same day (on time) and closed; O2 recorded only
      P2  village chief, R-QH-01, Sun 5 Apr (April 旬 1 again): 700 s; the 旬 needs one, so it adds nothing
      P3  village chief, R-QH-01, Tue 12 May: 300 s, too short; O3 handed off, left open
      P4  village chief, R-QH-01, Thu 25 Jun (June 旬 3): 700 s, counts; O4 handed off, resolved on
          Mon 20 Jul (weeks after its 5-working-day deadline: late) and closed
      C1  county chief, R-QH-02, Wed 20 May: 700 s, counts for the quarter; O6 recorded only
    Residents' reports: R1 Fri 10 Apr on R-QH-01 (counts), R2 Fri 10 Apr far from every area, R3 Fri
    20 Mar on R-QH-01 (Q1). The lake and forest chiefs do not patrol.

    Required in the quarter: village 9 (旬), county 1 (quarter), lake 3 and forest 3 (months) = 16;
    done: village 2 (April 旬 1, June 旬 3) + county 1 = 3. Problems found in the quarter: O1-O4, O6 = 5;
    handed off O1, O3, O4 = 3; closed O1, O4 = 2; on time O1 = 1. Complaints: R1 = 1.
    """
    await seed_demo()
    await upsert_rules([VILLAGE_DEKAD])
    office = await Department.get(code="river-office")
    await create_user(role=Role.STAFF, username="office.staff", password=PASSWORD, department_id=office.id)
    # Signed in on the real clock (tokens' expiry is checked against it); then the clock is moved.
    users = ("chief.village", "chief.county", "chief.lake", "admin", "dispatcher", "office.staff")
    tokens = {u: (await sign_in(client, u, PASSWORD))["accessToken"] for u in users}
    residents = [await new_resident(client) for _ in range(3)]
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code geometry } } }")
    history = History(client, tokens, {a["code"]: a for a in areas["patrolAreas"]["nodes"]})

    at(3, 20, 10)
    await submit_ok(client, residents[2], report_input("water.floating_rubbish", (30.29, 120.11)))
    p5 = await history.patrol("chief.village", "R-QH-01", 3, 28, 700)
    await history.observe("chief.village", p5, 100, hand_off=True)

    p1 = await history.patrol("chief.village", "R-QH-01", 4, 3, 700)
    o1 = await history.observe("chief.village", p1, 200, hand_off=True)
    await history.observe("chief.village", p1, 600, hand_off=False)
    assert o1 is not None
    await history.work_to_closure(o1, (4, 3), "chief.village")
    await history.patrol("chief.village", "R-QH-01", 4, 5, 700)

    at(4, 10, 10)
    await submit_ok(client, residents[0], report_input("water.floating_rubbish", (30.29, 120.09)))
    await submit_ok(client, residents[1], report_input("water.floating_rubbish", (30.21, 120.05)))

    p3 = await history.patrol("chief.village", "R-QH-01", 5, 12, 300)
    await history.observe("chief.village", p3, 150, hand_off=True)
    c1 = await history.patrol("chief.county", "R-QH-02", 5, 20, 700)
    await history.observe("chief.county", c1, 300, hand_off=False)

    p4 = await history.patrol("chief.village", "R-QH-01", 6, 25, 700)
    o4 = await history.observe("chief.village", p4, 400, hand_off=True)
    assert o4 is not None
    await history.work_to_closure(o4, (7, 20), "chief.village")

    at(7, 22, 10)  # asked for after the quarter
    return tokens


async def figures(client: httpx.AsyncClient, token: str, **variables: Any) -> dict[str, Any]:
    return (await gql_data(client, FIGURES, {"period": "2026-Q2", **variables}, token=token))["officeFigures"]


def counts(row: dict[str, Any]) -> tuple[int, ...]:
    keys = ("areas", "patrolsRequired", "patrolsDone", "problemsFound", "handedOff", "handledOnSpot",
            "closed", "closedOnTime", "solved", "complaints")  # fmt: skip
    return tuple(row[k] for k in keys)


async def test_the_quarters_figures_and_score_match_the_hand_count(client, quarter) -> None:
    office = await figures(client, quarter["office.staff"], groupBy=["LEVEL"])
    assert (office["period"], office["periodKind"]) == ("2026-Q2", "QUARTER")
    assert (office["firstDay"], office["lastDay"]) == ("2026-04-01", "2026-06-30")
    total = office["total"]
    # areas, required, done, found, handed off, on the spot, closed, on time, solved, complaints
    assert counts(total) == (4, 16, 3, 5, 3, 0, 2, 1, 2, 1)
    assert total["patrolRate"] == pytest.approx(3 / 16)
    assert total["closureRate"] == pytest.approx(2 / 3)
    assert total["onTimeClosureRate"] == pytest.approx(1 / 3)

    # Per level: the village chief's R-QH-01; the county chief's two rivers (his quarterly patrol is
    # counted on his first river); the lake and forest township chiefs.
    by_level = {r["level"]: r for r in office["rows"]}
    assert [r["level"] for r in office["rows"]] == ["COUNTY", "TOWNSHIP", "VILLAGE"]
    assert counts(by_level["VILLAGE"]) == (1, 9, 2, 4, 3, 0, 2, 1, 2, 1)
    assert counts(by_level["COUNTY"]) == (2, 1, 1, 1, 0, 0, 0, 0, 0, 1)
    assert counts(by_level["TOWNSHIP"]) == (2, 6, 0, 0, 0, 0, 0, 0, 0, 0)

    # The shipped method: patrol rate 40 (target 100 %), closure 30 (95 %), on time 20 (90 %), residents'
    # share of the problems 10 (at most 50 %).
    #   patrol 40 × 3/16 = 7.5; closure 30 × (2/3)/0.95 = 21.05; on time 20 × (1/3)/0.9 = 7.41;
    #   complaints 1/(1+5) = 16.7 % ≤ 50 %: 10. Total 45.96.
    assessment = total["assessment"]
    assert assessment["methodCode"] == "envcase-default-2026"
    scores = {i["metric"]: i["score"] for i in assessment["items"]}
    assert scores == {"PATROL_RATE": 7.5, "CLOSURE_RATE": 21.05, "ON_TIME_CLOSURE_RATE": 7.41,
                      "COMPLAINT_SHARE": 10.0}  # fmt: skip
    assert assessment["score"] == pytest.approx(45.96)
    explained = {i["metric"]: i["explanation"] for i in assessment["items"]}
    assert explained["PATROL_RATE"] == "18.8% < target 100%: 7.5 of 40"
    assert explained["COMPLAINT_SHARE"] == "16.7% ≤ target 50% (at most): 10 of 10"
    assert all(item["source"] for item in office["method"]["items"])
    # The village row: 40 × 2/9 = 8.89; closure and on time as the total; complaints 1/(1+4) ≤ 50 %: 10.
    assert by_level["VILLAGE"]["assessment"]["score"] == pytest.approx(8.89 + 21.05 + 7.41 + 10)
    # Nothing to measure scores the full weight and says so: the township chiefs found no problem.
    township = {i["metric"]: i for i in by_level["TOWNSHIP"]["assessment"]["items"]}
    assert township["CLOSURE_RATE"]["value"] is None and township["CLOSURE_RATE"]["score"] == 30
    assert township["PATROL_RATE"]["score"] == 0

    # Per area, and per region (the division codes of the demo's areas: 999901, 999902).
    by_area = {r["area"]["code"]: r for r in (await figures(client, quarter["office.staff"]))["rows"]}
    assert counts(by_area["R-QH-01"])[1:4] == (10, 3, 4) and by_area["R-QH-01"]["complaints"] == 1
    assert counts(by_area["R-QH-02"])[1:4] == (0, 0, 1)
    regions = await figures(client, quarter["office.staff"], groupBy=["REGION"], digits=4)
    assert [(r["region"], counts(r)) for r in regions["rows"]] == [("9999", (4, 16, 3, 5, 3, 0, 2, 1, 2, 1))]
    # One region's areas only; a month and a 旬 of the same history.
    only = await figures(client, quarter["office.staff"], region="999902")
    # R-QH-02 and the forest: 3 forest months; the county chief holds R-QH-02 too, so within 999902
    # his quarterly patrol (on R-QH-02) is required and done there.
    assert counts(only["total"])[:4] == (2, 4, 1, 1)
    april = await figures(client, quarter["office.staff"], period="2026-04-D1", groupBy=["LEVEL"])
    assert (april["firstDay"], april["lastDay"]) == ("2026-04-01", "2026-04-10")
    village = {r["level"]: r for r in april["rows"]}["VILLAGE"]
    assert counts(village)[1:5] == (1, 1, 2, 1)


async def test_chiefs_see_their_own_and_their_subordinates_figures(client, quarter) -> None:
    # The county river chief commands the village river chief on 999901, not the lake or forest chiefs.
    county = (await figures(client, quarter["chief.county"], groupBy=["LEVEL"]))["total"]
    assert counts(county) == (2, 10, 3, 5, 3, 0, 2, 1, 2, 1)
    village = (await figures(client, quarter["chief.village"], groupBy=["LEVEL"]))["total"]
    assert counts(village) == (1, 9, 2, 4, 3, 0, 2, 1, 2, 1)
    lake = (await figures(client, quarter["chief.lake"]))["rows"]
    assert [(r["area"]["code"], r["patrolsRequired"]) for r in lake] == [("L-MJ-01", 3)]
    for token in (quarter["dispatcher"], await new_resident(client)):
        body = await gql(client, FIGURES, {"period": "2026-Q2"}, token=token)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(client, FIGURES, {"period": "2026-Q2"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("period", ["2026-Q5", "2026-13", "2026-04-D4", "spring", "2026-Q2 ", "0999"])
async def test_a_bad_period_or_region_is_a_typed_error(client, period: str) -> None:
    await seed_demo()
    token = (await sign_in(client, "admin", PASSWORD))["accessToken"]
    body = await gql(client, FIGURES, {"period": period}, token=token)
    if period == "2026-Q2 ":  # surrounding spaces are forgiven
        assert body["data"]["officeFigures"]["period"] == "2026-Q2"
        body = await gql(client, FIGURES, {"period": "2026-Q2", "region": "99%"}, token=token)
        assert body["errors"][0]["extensions"] == {"code": "INVALID", "field": ["region"]}
        return
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "field": ["period"]}


async def test_admins_replace_the_method_and_bad_methods_are_refused(client, quarter) -> None:
    admin, staff = quarter["admin"], quarter["office.staff"]
    method: dict[str, Any] = {"code": "city-2026", "name": "示范市 2026", "source": "示范市河长制考核办法 2026",
              "items": [{"metric": "PATROL_RATE", "weight": 50, "target": 0.5, "source": "Art. 3"},
                        {"metric": "CLOSURE_RATE", "weight": 50, "target": 1.0, "source": "Art. 4"}]}  # fmt: skip

    async def set_method(token: str, given: dict[str, Any]) -> dict[str, Any]:
        return (await gql_data(client, METHOD_SET, {"input": given}, token=token))[
            "officeAssessmentMethodSet"
        ]

    refused = await set_method(staff, method)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    short = {**method, "items": [{**method["items"][0], "weight": 40}, method["items"][1]]}
    errors = (await set_method(admin, short))["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", ["input", "items"])]
    assert "add up to 90" in errors[0]["message"]
    unknown = {**method, "items": [method["items"][0], {**method["items"][1], "metric": "SPEED"}]}
    errors = (await set_method(admin, unknown))["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID", ["input", "items", "1", "metric"])]
    twice = {**method, "items": [method["items"][0], {**method["items"][1], "metric": "PATROL_RATE"}]}
    assert (await set_method(admin, twice))["userErrors"][0]["field"] == ["input", "items", "1", "metric"]
    # Refusals changed nothing: the shipped method still scores.
    assert (await figures(client, staff))["method"]["code"] == "envcase-default-2026"

    stored = await set_method(admin, method)
    assert stored["userErrors"] == [] and stored["method"]["code"] == "city-2026"
    assert (await set_method(admin, method))["method"] == stored["method"]  # a retry is the same
    # 50 × min(1, (3/16)/0.5) = 18.75; 50 × (2/3)/1 = 33.33: 52.08.
    total = (await figures(client, staff))["total"]["assessment"]
    assert total["methodCode"] == "city-2026" and total["score"] == pytest.approx(52.08)
    reset = (await gql_data(client, METHOD_RESET, token=admin))["officeAssessmentMethodReset"]
    assert reset["method"]["code"] == "envcase-default-2026"
    assert (await figures(client, staff))["total"]["assessment"]["score"] == pytest.approx(45.96)


async def test_the_office_figures_export_as_csv(client, quarter, settings: Settings) -> None:
    token = quarter["office.staff"]
    given = {"clientId": str(uuid.uuid4()), "kind": "OFFICE_FIGURES", "format": "CSV",
             "officePeriod": "2026-Q2", "officeGroupBy": ["LEVEL"]}  # fmt: skip
    started = (await gql_data(client, EXPORT, {"input": given}, token=token))["exportStart"]
    assert started["userErrors"] == [], started
    while await ExportRunner(export_config(settings)).run_once() is not None:
        pass
    node = (await gql_data(client, EXPORT_NODE, {"id": started["export"]["id"]}, token=token))["node"]
    assert node["status"] == "DONE", node
    response = await client.get(node["downloadUrl"], headers={"Authorization": f"Bearer {token}"})
    rows = read_csv(response.content)  # UTF-8 with a BOM
    assert [(r["region"], r["level"]) for r in rows] == [
        ("", "COUNTY"), ("", "TOWNSHIP"), ("", "VILLAGE"), ("TOTAL", "")
    ]  # fmt: skip
    total = rows[-1]
    assert (total["period"], total["patrols_required"], total["patrols_done"], total["complaints"]) == (
        "2026-Q2", "16", "3", "1"
    )  # fmt: skip
    assert float(total["assessment_score"]) == pytest.approx(45.96)
    assert "PATROL_RATE: 18.8% < target 100%" in total["assessment_items"]
    # A bad period is refused when the export starts; residents and dispatchers export nothing.
    bad = {**given, "clientId": str(uuid.uuid4()), "officePeriod": "2026-Q9"}
    refused = (await gql_data(client, EXPORT, {"input": bad}, token=token))["exportStart"]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("INVALID", ["input", "officePeriod"])
    ]
    dispatcher = {**given, "clientId": str(uuid.uuid4())}
    refused = (await gql_data(client, EXPORT, {"input": dispatcher}, token=quarter["dispatcher"]))[
        "exportStart"
    ]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
