"""Reporting up the chain (上报), assigning to a department (交办), following the case, and the chiefs'
read-only view of residents' cases in their areas, over HTTP in the demo city (issue 17 item 4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from strawberry import relay

from identity.models import Role
from kernel import clock
from kernel.outbox import OutboxEvent
from patrols.chain_models import Escalation
from reports.models import Case, CaseEvent, Report, ReportSource
from server.seed import seed_demo
from tests.conftest import make_settings
from tests.graphql_client import gql, gql_data, new_account, new_resident, sign_in
from tests.reports.helpers import new_photo

PASSWORD = "demo-password-2026"
T0 = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)  # Wednesday 6 May 2026, 09:00 in Beijing
NOW = T0 + timedelta(hours=1)
# On the Qing River's upper segment (R-QH-01), and about 100 m north of its line.
ON_RIVER = (30.2925, 120.09)
NEAR_RIVER = (30.2934, 120.09)
FAR_FROM_RIVER = (30.3025, 120.09)  # about 1.1 km north: outside the 200 m band

START = """mutation($input: PatrolStartInput!) { patrolStart(input: $input) {
  patrol { id } userErrors { code field message } } }"""
OBSERVE = """mutation($input: PatrolObservationRecordInput!) { patrolObservationRecord(input: $input) {
  observation { id caseReference } userErrors { code field message } } }"""
HAND_OFF = """mutation($input: PatrolObservationEscalateInput!) { patrolObservationEscalate(input: $input) {
  observation { id caseReference } userErrors { code field message } } }"""
ESCALATE = """mutation($input: EscalationCreateInput!) { escalationCreate(input: $input) {
  escalation { id status fromLevel toLevel note fromChief { username } toChief { username }
    area { code } caseReference }
  userErrors { code field message } } }"""
ASSIGN = """mutation($input: EscalationAssignInput!) { escalationAssign(input: $input) {
  escalation { id status caseReference caseStatus deadline department { code } assignedBy { username }
    case { id status resolutionDueAt } }
  userErrors { code field message } } }"""
FOLLOWED = """query($status: EscalationStatus) { followedEscalations(first: 20, status: $status) {
  nodes { id status caseReference caseStatus deadline overdue resolvedAt closedAt department { code }
    fromChief { username } toChief { username } } } }"""
TRANSITION = """mutation($input: CaseTransitionInput!) { caseTransition(input: $input) {
  case { id status version } userErrors { code field message } } }"""
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  case { id reference status } userErrors { code field message } } }"""
AREA_CASES = """query($area: ID) { chiefAreaCases(first: 20, areaId: $area) {
  nodes { reference status reporterCount location { latitude longitude } category { code } }
  pageInfo { hasNextPage endCursor } } }"""
AREA_CASE = """query($id: ID!) { chiefAreaCase(caseId: $id) { reference status } }"""


@pytest.fixture
def settings(tmp_path, request):
    overrides = getattr(request, "param", {})  # a test may set others (indirect parametrization)
    return make_settings(media_root=tmp_path / "media", access_token_seconds=30 * 86400, **overrides)


@pytest.fixture
async def city(client):
    await seed_demo()
    names = ("chief.village", "chief.county", "chief.lake", "chief.forest", "office.river", "water.staff",
             "eco.staff", "dispatcher", "admin")  # fmt: skip
    tokens = {u: (await sign_in(client, u, PASSWORD))["accessToken"] for u in names}
    clock.set_clock(lambda: NOW)
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code } } }")
    by_code = {a["code"]: a["id"] for a in areas["patrolAreas"]["nodes"]}
    users = {u: (await gql_data(client, "{ me { id } }", token=t))["me"]["id"] for u, t in tokens.items()}
    yield {"tokens": tokens, "areas": by_code, "users": users}
    clock.set_clock(None)


def _db(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


async def call(client, city, user, document, payload, key):
    data = await gql_data(client, document, {"input": payload}, token=city["tokens"][user])
    return data[key]


async def observation(client, city, category="SAND_MINING", user="chief.village", area="R-QH-01", n=1):
    token = city["tokens"][user]
    patrol = (await gql_data(client, START, {"input": {"clientId": f"p-{user}-{n}", "areaId": city["areas"][area],
        "mode": "FOOT", "startedAt": T0.isoformat()}}, token=token))["patrolStart"]  # fmt: skip
    assert patrol["userErrors"] == []
    seen = {"clientId": f"o-{n}", "patrolId": patrol["patrol"]["id"], "category": category,
            "location": {"latitude": ON_RIVER[0], "longitude": ON_RIVER[1]},
            "observedAt": (T0 + timedelta(minutes=5)).isoformat(), "note": "采砂船两艘 two sand dredgers"}  # fmt: skip
    observed = (await gql_data(client, OBSERVE, {"input": seen}, token=token))["patrolObservationRecord"]
    assert observed["userErrors"] == []
    return observed["observation"]["id"]


async def resident_case(client, at, category="water.floating_rubbish"):
    token = await new_resident(client)
    payload = {"clientId": str(uuid.uuid4()), "categoryCode": category,
               "description": "我的电话 13800000000, 河面垃圾 rubbish on the water",
               "location": {"latitude": at[0], "longitude": at[1]}}  # fmt: skip
    result = (await gql_data(client, SUBMIT, {"input": payload}, token=token))["submitReport"]
    assert result["userErrors"] == [], result
    return result["case"]


async def step(client, city, user, case_id, action, **extra):
    answer = await call(client, city, user, TRANSITION, {"caseId": case_id, "action": action, **extra},
                        "caseTransition")  # fmt: skip
    assert answer["userErrors"] == [], answer
    return answer["case"]


async def followed(client, city, user="chief.county", status=None):
    data = await gql_data(client, FOLLOWED, {"status": status}, token=city["tokens"][user])
    return data["followedEscalations"]["nodes"]


# --- the "done when" scenario -------------------------------------------------------------------


async def test_sand_mining_goes_up_the_chain_to_a_department_and_the_county_chief_follows_it(client, city):
    found = await observation(client, city)
    # 上报: the village chief reports it up; the county chief of the river is the level above.
    sent = await call(client, city, "chief.village", ESCALATE, {"observationId": found, "note": "请协调"},
                      "escalationCreate")  # fmt: skip
    assert sent["userErrors"] == []
    up = sent["escalation"]
    assert (up["status"], up["fromLevel"], up["toLevel"]) == ("REPORTED", "VILLAGE", "COUNTY")
    assert up["fromChief"]["username"] == "chief.village" and up["toChief"]["username"] == "chief.county"
    assert up["area"]["code"] == "R-QH-01" and up["caseReference"] is None
    [seen] = await followed(client, city)
    assert (seen["id"], seen["status"], seen["caseStatus"]) == (up["id"], "REPORTED", None)

    # 交办: the river chief office gives it to the water bureau with a deadline.
    deadline = NOW + timedelta(days=10)
    order = {"escalationId": up["id"], "departmentCode": "water", "deadline": deadline.isoformat(),
             "note": "十日内查处 deal with it within ten days"}  # fmt: skip
    assigned = await call(client, city, "office.river", ASSIGN, order, "escalationAssign")
    assert assigned["userErrors"] == []
    done = assigned["escalation"]
    assert done["status"] == "ASSIGNED" and done["department"] == {"code": "water"}
    assert done["caseStatus"] == "ROUTED" and done["assignedBy"]["username"] == "office.river"
    assert datetime.fromisoformat(done["deadline"]) == deadline
    # The case is reports', with the ordered deadline; the village chief reported it (he follows it too).
    case = await Case.get(reference=done["caseReference"])
    assert case.resolution_due_at == deadline and case.department_id is not None
    report = await Report.get(case_id=case.id)
    assert report.source == ReportSource.PATROL and report.origin["escalation_id"] == _db(up["id"])
    assert await CaseEvent.filter(case_id=case.id, kind="ordered").count() == 1
    # A retry of the order changes nothing.
    again = await call(client, city, "office.river", ASSIGN, order, "escalationAssign")
    assert again["userErrors"] == [] and again["escalation"]["caseReference"] == done["caseReference"]
    assert await Case.all().count() == 1 and await CaseEvent.filter(kind="ordered").count() == 1

    # The department works it, and the county chief sees each status in his followed list.
    case_id = (await call(client, city, "office.river", ASSIGN, order, "escalationAssign"))["escalation"]
    case_gid = (await gql_data(client, """query { myReports(first: 1) { nodes { case { id } } } }""",
                               token=city["tokens"]["chief.village"]))["myReports"]["nodes"][0]["case"]["id"]  # fmt: skip
    assert case_id["case"] is None  # the office staff do not see the case itself, only its status
    statuses: list[str] = []
    # Sand mining is resolved with an after-photo and checked on site (核查) before it closes.
    after = await new_photo(_db(city["users"]["water.staff"]))
    resolution: dict[str, object] = {"note": "采砂船已扣押 dredgers impounded", "photoIds": [after]}
    check: dict[str, object] = {"photoIds": [await new_photo(_db(city["users"]["dispatcher"]))]}
    steps: list[tuple[str, str, dict[str, object]]] = [("water.staff", "ACCEPT", {}), ("water.staff", "START", {}),
                                ("water.staff", "RESOLVE", resolution), ("dispatcher", "VERIFY_PASS", check),
                                ("chief.village", "CONFIRM", {})]  # fmt: skip
    for user, action, extra in steps:
        clock.set_clock(lambda: NOW + timedelta(days=len(statuses) + 1))
        await step(client, city, user, case_gid, action, **extra)
        [row] = await followed(client, city)
        statuses.append(row["caseStatus"])
        assert row["overdue"] is False
    assert statuses == ["ACCEPTED", "IN_PROGRESS", "RESOLVED", "VERIFIED", "CLOSED"]
    assert row["resolvedAt"] is not None and row["closedAt"] is not None
    # The office and the sender follow it as well; other chiefs do not.
    assert [r["id"] for r in await followed(client, city, "office.river")] == [up["id"]]
    assert [r["id"] for r in await followed(client, city, "chief.village")] == [up["id"]]
    assert await followed(client, city, "chief.lake") == []
    # Announced in the outbox, for notifications and webhooks.
    kinds = await OutboxEvent.filter(subject="escalation").order_by("id").values_list("kind", "channels")
    county, village = city["users"]["chief.county"], city["users"]["chief.village"]
    assert [k for k, _ in kinds] == ["escalation_reported", "escalation_assigned"]
    assert kinds[0][1] == sorted([f"chief:{_db(county)}", f"chief:{_db(village)}"])


async def test_an_observation_already_handed_off_is_ordered_through_its_own_case(client, city):
    found = await observation(client, city, "FLOATING_RUBBISH")
    handed = await call(
        client, city, "chief.village", HAND_OFF, {"observationId": found}, "patrolObservationEscalate"
    )
    reference = handed["observation"]["caseReference"]
    up = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    assert up["escalation"]["caseReference"] == reference
    deadline = NOW + timedelta(days=3)
    assigned = await call(client, city, "chief.county", ASSIGN, {"escalationId": up["escalation"]["id"],
        "departmentCode": "sanitation", "deadline": deadline.isoformat()}, "escalationAssign")  # fmt: skip
    assert assigned["userErrors"] == []
    assert assigned["escalation"]["caseReference"] == reference
    assert assigned["escalation"]["department"] == {"code": "sanitation"}
    case = await Case.get(reference=reference)
    assert case.resolution_due_at == deadline and case.status == "ROUTED" and await Case.all().count() == 1


# --- bad input ------------------------------------------------------------------------------------


async def test_reporting_to_a_chief_who_is_not_above_is_refused(client, city):
    found = await observation(client, city)
    for user in ("chief.lake", "chief.forest", "chief.village", "water.staff"):
        sent = await call(client, city, "chief.village", ESCALATE,
                          {"observationId": found, "toChiefId": city["users"][user]}, "escalationCreate")  # fmt: skip
        [error] = sent["userErrors"]
        assert error["code"] in ("INVALID",) and error["field"] == ["input", "toChiefId"], (user, error)
    # Nobody is above the county chief here, and a lake chief cannot report the river's up.
    county_found = await observation(client, city, user="chief.county", n=2)
    sent = await call(
        client, city, "chief.county", ESCALATE, {"observationId": county_found}, "escalationCreate"
    )
    assert [e["code"] for e in sent["userErrors"]] == ["CONFLICT"]
    refused = await call(client, city, "chief.lake", ESCALATE, {"observationId": found}, "escalationCreate")
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    resident = await new_resident(client)
    body = await gql(client, ESCALATE, {"input": {"observationId": found}}, token=resident)
    assert [e["code"] for e in body["data"]["escalationCreate"]["userErrors"]] == ["FORBIDDEN"]
    bad = await call(client, city, "chief.village", ESCALATE, {"observationId": found, "caseId": found},
                     "escalationCreate")  # fmt: skip
    assert [e["code"] for e in bad["userErrors"]] == ["INVALID"]
    assert await Escalation.all().count() == 0 and await OutboxEvent.filter(subject="escalation").count() == 0


async def test_escalating_twice_creates_nothing_twice(client, city):
    found = await observation(client, city)
    first = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    named = {"observationId": found, "toChiefId": city["users"]["chief.county"]}
    second = await call(client, city, "chief.village", ESCALATE, named, "escalationCreate")
    assert second["userErrors"] == [] and second["escalation"]["id"] == first["escalation"]["id"]
    assert await Escalation.all().count() == 1
    assert await OutboxEvent.filter(subject="escalation").count() == 1


async def test_assigning_needs_the_office_or_a_chief_above_and_a_future_deadline(client, city):
    found = await observation(client, city)
    up = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    order = {"escalationId": up["escalation"]["id"], "departmentCode": "water",
             "deadline": (NOW + timedelta(days=5)).isoformat()}  # fmt: skip
    # The sender may not assign his own report; others who cannot see it get NOT_FOUND.
    for user, code in [("chief.village", "FORBIDDEN"), ("water.staff", "NOT_FOUND"), ("dispatcher", "NOT_FOUND"),
                       ("chief.lake", "NOT_FOUND"), ("eco.staff", "NOT_FOUND")]:  # fmt: skip
        answer = await call(client, city, user, ASSIGN, order, "escalationAssign")
        assert [e["code"] for e in answer["userErrors"]] == [code], user
    past = await call(client, city, "office.river", ASSIGN, {**order, "deadline": (NOW - timedelta(hours=1)).isoformat()},
                      "escalationAssign")  # fmt: skip
    assert [(e["code"], e["field"]) for e in past["userErrors"]] == [("INVALID", ["input", "deadline"])]
    unknown = await call(
        client, city, "office.river", ASSIGN, {**order, "departmentCode": "nope"}, "escalationAssign"
    )
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [
        ("INVALID", ["input", "departmentCode"])
    ]
    assert await Case.all().count() == 0
    assert await Escalation.filter(status="REPORTED").count() == 1
    # A different order after the first is a conflict, not a second case.
    assert (await call(client, city, "chief.county", ASSIGN, order, "escalationAssign"))["userErrors"] == []
    other = await call(
        client, city, "office.river", ASSIGN, {**order, "departmentCode": "eco"}, "escalationAssign"
    )
    assert [e["code"] for e in other["userErrors"]] == ["CONFLICT"]
    assert await Case.all().count() == 1


async def test_an_office_elsewhere_may_not_assign(client, city):
    found = await observation(client, city)
    up = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    from reports.models import Department, Jurisdiction

    elsewhere = await Jurisdiction.create(code="888800", name="Elsewhere", min_lat=0, min_lon=0, max_lat=1, max_lon=1,
        geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})  # fmt: skip
    office = await Department.create(code="office-far", name="Far office", kind="river_chief_office",
                                     jurisdiction=elsewhere)  # fmt: skip
    token = await new_account(client, Role.STAFF, "far.office", department_id=office.id)
    order = {"escalationId": up["escalation"]["id"], "departmentCode": "water",
             "deadline": (NOW + timedelta(days=5)).isoformat()}  # fmt: skip
    body = await gql_data(client, ASSIGN, {"input": order}, token=token)
    assert [e["code"] for e in body["escalationAssign"]["userErrors"]] == ["NOT_FOUND"]


# --- the chiefs' area view ------------------------------------------------------------------------


async def test_chiefs_see_residents_cases_in_their_areas_without_personal_data(client, city):
    near = await resident_case(client, NEAR_RIVER)
    await resident_case(client, FAR_FROM_RIVER)
    for user in ("chief.village", "chief.county"):
        data = await gql_data(client, AREA_CASES, {"area": None}, token=city["tokens"][user])
        nodes = data["chiefAreaCases"]["nodes"]
        assert [n["reference"] for n in nodes] == [near["reference"]], user
        assert nodes[0]["category"] == {"code": "water.floating_rubbish"} and nodes[0]["reporterCount"] == 1
    # The lake chief's lake is elsewhere; and the view has no field that names or places the resident.
    lake = await gql_data(client, AREA_CASES, {"area": None}, token=city["tokens"]["chief.lake"])
    assert lake["chiefAreaCases"]["nodes"] == []
    one = await gql_data(client, AREA_CASE, {"id": near["id"]}, token=city["tokens"]["chief.village"])
    assert one["chiefAreaCase"]["reference"] == near["reference"]
    introspect = await gql_data(client, '{ __type(name: "AreaCase") { fields { name } } }')
    names = {f["name"] for f in introspect["__type"]["fields"]}
    assert not names & {"reports", "reporter", "description", "summary", "photos", "photoIds", "evidence",
                        "originalLocation", "phone"}  # fmt: skip


async def test_a_chief_reading_a_case_outside_his_areas_gets_not_found(client, city):
    far = await resident_case(client, FAR_FROM_RIVER)
    near = await resident_case(client, NEAR_RIVER)
    body = await gql(client, AREA_CASE, {"id": far["id"]}, token=city["tokens"]["chief.village"])
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    lake = await gql(client, AREA_CASE, {"id": near["id"]}, token=city["tokens"]["chief.lake"])
    assert lake["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    staff = await gql(client, AREA_CASE, {"id": near["id"]}, token=city["tokens"]["water.staff"])
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other_area = await gql(client, AREA_CASES, {"area": city["areas"]["L-MJ-01"]},
                           token=city["tokens"]["chief.village"])  # fmt: skip
    assert other_area["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_chief_reports_a_resident_case_in_his_area_up_and_it_is_ordered(client, city):
    near = await resident_case(client, NEAR_RIVER)
    far = await resident_case(client, FAR_FROM_RIVER)
    outside = await call(client, city, "chief.village", ESCALATE, {"caseId": far["id"]}, "escalationCreate")
    assert [(e["code"], e["field"]) for e in outside["userErrors"]] == [("NOT_FOUND", ["input", "caseId"])]
    up = await call(client, city, "chief.village", ESCALATE, {"caseId": near["id"]}, "escalationCreate")
    assert up["userErrors"] == [] and up["escalation"]["caseReference"] == near["reference"]
    deadline = NOW + timedelta(days=2)
    order = {
        "escalationId": up["escalation"]["id"],
        "departmentCode": "sanitation",
        "deadline": deadline.isoformat(),
    }
    assigned = await call(client, city, "office.river", ASSIGN, order, "escalationAssign")
    assert assigned["userErrors"] == []
    case = await Case.get(reference=near["reference"])
    assert case.status == "ROUTED" and case.resolution_due_at == deadline
    [row] = await followed(client, city)
    assert row["caseStatus"] == "ROUTED" and row["department"] == {"code": "sanitation"}


@pytest.mark.parametrize("settings", [{"river_case_buffer_m": 2000.0}], indirect=True)
async def test_the_river_buffer_is_configurable(client, city):
    near = await resident_case(client, NEAR_RIVER)
    far = await resident_case(client, FAR_FROM_RIVER)
    data = await gql_data(client, AREA_CASES, {"area": None}, token=city["tokens"]["chief.village"])
    assert [n["reference"] for n in data["chiefAreaCases"]["nodes"]] == [far["reference"], near["reference"]]


async def test_webhooks_hear_of_escalations_without_names(client, city):
    from webhooks.models import WebhookEndpoint
    from webhooks.planning import plan_webhooks

    await WebhookEndpoint.create(url="https://hooks.example.org/in", created_at=NOW, updated_at=NOW)
    found = await observation(client, city)
    up = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    order = {"escalationId": up["escalation"]["id"], "departmentCode": "water",
             "deadline": (NOW + timedelta(days=5)).isoformat()}  # fmt: skip
    assert (await call(client, city, "office.river", ASSIGN, order, "escalationAssign"))["userErrors"] == []
    events = await OutboxEvent.filter(subject="escalation").order_by("id")
    payloads = [(await plan_webhooks(event))[0].payload for event in events]
    assert [p["type"] for p in payloads] == ["escalation.reported", "escalation.assigned"]
    reported, assigned = (p["data"] for p in payloads)
    assert reported["escalation"]["id"] == up["escalation"]["id"]
    assert assigned["escalation"]["department"]["code"] == "water"
    assert assigned["case"]["department"]["code"] == "water" and assigned["escalation"]["deadline"]
    text = str(payloads)
    assert "chief.village" not in text and "黄勇" not in text and "采砂船" not in text
    ordered = await OutboxEvent.filter(subject="case", kind="ordered").count()
    assert ordered == 1


async def test_the_chiefs_are_notified_in_their_inbox(client, city):
    from notifications.models import Notification
    from notifications.planner import plan_notifications

    found = await observation(client, city)
    up = await call(client, city, "chief.village", ESCALATE, {"observationId": found}, "escalationCreate")
    deadline = datetime(2026, 5, 11, 10, 0, tzinfo=UTC)  # 18:00 in the city
    order = {
        "escalationId": up["escalation"]["id"],
        "departmentCode": "water",
        "deadline": deadline.isoformat(),
    }
    assert (await call(client, city, "office.river", ASSIGN, order, "escalationAssign"))["userErrors"] == []
    for event in await OutboxEvent.filter(subject="escalation").order_by("id"):
        await plan_notifications(event)
    rows = (
        await Notification.filter(subject="escalation").order_by("id").values_list("user_id", "kind", "body")
    )
    county, village = _db(city["users"]["chief.county"]), _db(city["users"]["chief.village"])
    assert [(u, k) for u, k, _ in rows] == [
        (county, "escalation_reported"),
        (county, "escalation_assigned"),
        (village, "escalation_assigned"),
    ]
    reference = (await Escalation.get(id=_db(up["escalation"]["id"]))).case_reference
    assert "R-QH-01" in rows[1][2] and str(reference) in rows[1][2] and "2026-05-11 18:00" in rows[1][2]


async def test_the_area_view_pages_newest_first(client, city):
    on_the_line = [(30.2975, 120.07), (30.2925, 120.09), (30.286, 120.11)]  # 2 km apart: not duplicates
    made = [await resident_case(client, at) for at in on_the_line]
    token = city["tokens"]["chief.county"]
    page_query = """query($after: String) { chiefAreaCases(first: 2, after: $after) {
      nodes { reference } pageInfo { hasNextPage endCursor } } }"""
    first = (await gql_data(client, page_query, {"after": None}, token=token))["chiefAreaCases"]
    assert [n["reference"] for n in first["nodes"]] == [made[2]["reference"], made[1]["reference"]]
    assert first["pageInfo"]["hasNextPage"] is True
    second = await gql_data(client, page_query, {"after": first["pageInfo"]["endCursor"]}, token=token)
    assert [n["reference"] for n in second["chiefAreaCases"]["nodes"]] == [made[0]["reference"]]
    assert second["chiefAreaCases"]["pageInfo"]["hasNextPage"] is False
    bad = await gql(client, page_query, {"after": "nonsense"}, token=token)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"
