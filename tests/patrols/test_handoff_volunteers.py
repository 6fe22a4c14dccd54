"""Issue 17 items 3 and 7 over HTTP: every observation kind can be handed off in the demo city (what
no department handles goes to the chief office's triage), an observation can be handled on the spot
with after-photos, and social supervisors (民间河长) patrol apart from the chiefs and never act as one."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kernel import clock
from kernel.outbox import OutboxEvent
from media.models import Photo
from patrols.models import Observation
from reports.models import Case, Report
from server.seed import seed_demo
from tests.graphql_client import gql, gql_data, sign_in
from tests.media.phone import jpeg, upload_simple
from tests.patrols.test_patrols_api import COMPLIANCE, PASSWORD, T0, append, finish, walk
from tests.patrols.test_patrols_api import settings as settings
from tests.reports.helpers import db_id

OBSERVE = """mutation($input: PatrolObservationRecordInput!) { patrolObservationRecord(input: $input) {
  observation { id status } userErrors { code field message } } }"""
ESCALATE = """mutation($input: PatrolObservationEscalateInput!) { patrolObservationEscalate(input: $input) {
  observation { id caseReference status } userErrors { code field message } } }"""
ON_SPOT = """mutation($input: PatrolObservationHandleOnSpotInput!) {
  patrolObservationHandleOnSpot(input: $input) {
    observation { id status handledOnSpotAt handlingNote afterPhotoIds caseReference }
    userErrors { code field message } } }"""
START = """mutation($input: PatrolStartInput!) { patrolStart(input: $input) {
  patrol { id byVolunteer chief { username } } userErrors { code field message } } }"""
PROBLEMS = """query($id: ID!) { node(id: $id) { ... on Patrol { id byVolunteer
  problems { found handedOff handledOnSpot open }
  observations { id status afterPhotoIds } } } }"""
ENROLL = """mutation($input: VolunteerEnrollmentCreateInput!) { volunteerEnrollmentCreate(input: $input) {
  enrollment { id validFrom validTo area { code } volunteer { username } }
  userErrors { code field message } } }"""
ENROLL_END = """mutation($input: VolunteerEnrollmentEndInput!) { volunteerEnrollmentEnd(input: $input) {
  enrollment { id validTo } userErrors { code field message } } }"""
VOLUNTEER_PATROLS = """query($area: ID) { volunteerPatrols(first: 10, areaId: $area) {
  nodes { id byVolunteer recordedBy { username } } } }"""
ASSIGN = """mutation($input: ChiefAssignmentCreateInput!) { chiefAssignmentCreate(input: $input) {
  assignment { id } userErrors { code field message } } }"""
DELEGATE = """mutation($input: PatrolDelegationCreateInput!) { patrolDelegationCreate(input: $input) {
  delegation { validFrom } userErrors { code field message } } }"""

USERS = (
    "chief.village",
    "chief.county",
    "chief.forest",
    "admin",
    "dispatcher",
    "office.river",
    "volunteer.qh",
)
RIVER_POINT = {"latitude": 30.29, "longitude": 120.10}  # on the Qing River, West District
FOREST_POINT = {"latitude": 30.32, "longitude": 120.19}  # in the North Hills forest, East District

# Every shipped observation kind, on the kind of area it belongs to, and the department it lands at in
# the demo city (the national rules, the demo city's own, and the chief offices' triage).
EXPECTED = [
    ("R-QH-01", "FLOATING_RUBBISH", "water.floating_rubbish", "river-office"),
    ("R-QH-01", "ILLEGAL_DISCHARGE", "water.discharge", "eco"),
    ("R-QH-01", "SAND_MINING", "water.sand_mining", "water"),
    ("R-QH-01", "ILLEGAL_BUILDING", "water.shoreline_building", "urban-west"),
    ("R-QH-01", "DEAD_FISH", "water.discharge", "eco"),
    ("R-QH-01", "WATER_COLOUR", "water.discharge", "eco"),
    ("R-QH-01", "ILLEGAL_FISHING", "water.illegal_fishing", "agriculture"),
    ("R-QH-01", "BANK_DAMAGE", "water.bank_damage", "water"),
    ("F-BS-01", "ILLEGAL_LOGGING", "forest.illegal_logging", "forestry"),
    ("F-BS-01", "FIRE_HAZARD", "forest.fire", "forestry"),
    ("F-BS-01", "PESTS", "forest.pests", "forestry"),
    ("R-QH-01", "DUMPING", "waste.dumping", "sanitation"),
    ("R-QH-01", "OTHER", "other.other", "river-office"),
    ("F-BS-01", "ILLEGAL_BUILDING", "forest.illegal_occupation", "forestry"),
    ("F-BS-01", "OTHER", "other.other", "forest-office"),
]


@pytest.fixture
async def city(client: httpx.AsyncClient) -> dict[str, Any]:
    await seed_demo()
    tokens = {u: (await sign_in(client, u, PASSWORD))["accessToken"] for u in USERS}
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code geometry } } }")
    by_code = {a["code"]: a for a in areas["patrolAreas"]["nodes"]}
    users = {u: (await gql_data(client, "{ me { id } }", token=t))["me"]["id"] for u, t in tokens.items()}
    return {"tokens": tokens, "areas": by_code, "users": users}


async def start(client: httpx.AsyncClient, city: dict[str, Any], user: str, area: str, cid: str) -> dict:
    variables = {"input": {"clientId": cid, "areaId": city["areas"][area]["id"], "mode": "FOOT",
                           "startedAt": T0.isoformat()}}  # fmt: skip
    return (await gql_data(client, START, variables, token=city["tokens"][user]))["patrolStart"]


async def observe(
    client: httpx.AsyncClient, token: str, patrol_id: str, category: str, cid: str, at: dict | None = None
) -> dict:
    variables = {"input": {"clientId": cid, "patrolId": patrol_id, "category": category,
                           "location": at or RIVER_POINT, "observedAt": T0.isoformat()}}  # fmt: skip
    return (await gql_data(client, OBSERVE, variables, token=token))["patrolObservationRecord"]


async def mutate(client: httpx.AsyncClient, query: str, token: str, **given: Any) -> dict:
    data = await gql_data(client, query, {"input": given}, token=token)
    return next(iter(data.values()))


def codes(payload: dict) -> list[tuple[str, str]]:
    return [(e["code"], ".".join(e["field"] or [])) for e in payload["userErrors"]]


# --- item 3: hand-off for every kind -------------------------------------------------------------


async def test_every_observation_kind_hands_off_in_the_demo_city(client, city):
    kinds = (await gql_data(client, "{ observationCategories { code areaKinds } }"))["observationCategories"]
    shipped = {(k["code"], kind) for k in kinds for kind in k["areaKinds"]}
    kind_of = {"R-QH-01": "RIVER_SEGMENT", "F-BS-01": "FOREST_AREA"}
    assert {code for code, _ in shipped} == {code for _, code, _, _ in EXPECTED}  # all thirteen tried
    assert all((code, kind_of[area]) in shipped for area, code, _, _ in EXPECTED)
    patrols = {
        "R-QH-01": ("chief.village", (await start(client, city, "chief.village", "R-QH-01", "river"))),
        "F-BS-01": ("chief.forest", (await start(client, city, "chief.forest", "F-BS-01", "forest"))),
    }
    for i, (area, kind, category, department) in enumerate(EXPECTED):
        user, patrol = patrols[area]
        token = city["tokens"][user]
        at = RIVER_POINT if area == "R-QH-01" else FOREST_POINT
        observed = await observe(client, token, patrol["patrol"]["id"], kind, f"o{i}", at)
        assert observed["userErrors"] == [] and observed["observation"]["status"] == "OPEN"
        handed = await mutate(client, ESCALATE, token, observationId=observed["observation"]["id"])
        assert handed["userErrors"] == [], (kind, handed)
        assert handed["observation"]["status"] == "HANDED_OFF"
        case = await Case.get(reference=handed["observation"]["caseReference"]).prefetch_related(
            "department", "category"
        )
        assert case.department is not None, (kind, case.routing_reason)
        assert (kind, case.category.code, case.department.code) == (kind, category, department)
        if department.endswith("-office") and kind == "OTHER":
            # Nobody handles it here: the chief office's triage, saying so.
            assert "triage" in case.routing_reason and "no routing rule" in case.routing_reason


async def test_a_case_routed_to_the_office_triage_says_why_and_the_sources_are_cited(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city, "chief.village", "R-QH-01", "p"))["patrol"]
    sand = await observe(client, token, patrol["id"], "SAND_MINING", "sand")
    other = await observe(client, token, patrol["id"], "OTHER", "other")
    for observed in (sand, other):
        await mutate(client, ESCALATE, token, observationId=observed["observation"]["id"])
    sand_case = await Case.get(id=(await Observation.get(id=db_id(sand["observation"]["id"]))).case_id)
    other_case = await Case.get(id=(await Observation.get(id=db_id(other["observation"]["id"]))).case_id)
    assert "cn.water.sand_mining" in sand_case.routing_reason and "Water Law" in sand_case.routing_reason
    assert other_case.routing_reason.endswith("sent to the river_chief_office triage queue -> river-office")
    # A resident's form still refuses a category nobody handles here (only officials' hand-offs fall
    # back to the office), and the new kinds are offered to residents too.
    offered = await gql_data(
        client, "query($p: LocationInput!) { categoriesAt(location: $p) { code } }", {"p": RIVER_POINT}
    )
    offered_codes = {c["code"] for c in offered["categoriesAt"]}
    assert {"water.sand_mining", "water.illegal_fishing", "water.bank_damage"} <= offered_codes
    assert "other.other" not in offered_codes


# --- item 3: handled on the spot -----------------------------------------------------------------


async def test_handled_on_the_spot_counts_as_found_and_solved(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city, "chief.village", "R-QH-01", "p"))["patrol"]
    rubbish = (await observe(client, token, patrol["id"], "FLOATING_RUBBISH", "o1"))["observation"]
    sand = (await observe(client, token, patrol["id"], "SAND_MINING", "o2"))["observation"]
    await observe(client, token, patrol["id"], "DUMPING", "o3")
    after = (await upload_simple(client, token, jpeg(seed=1)))["photo"]["id"]

    # No after-photo: a typed error, nothing recorded.
    refused = await mutate(client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[])
    assert codes(refused) == [("INVALID", "input.afterPhotoIds")] and refused["observation"] is None
    # Someone else's photo (the county chief's): NOT_FOUND for that entry, and nothing stored at all.
    theirs = (await upload_simple(client, city["tokens"]["chief.county"], jpeg(seed=2)))["photo"]["id"]
    refused = await mutate(client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[after, theirs])
    assert codes(refused) == [("NOT_FOUND", "input.afterPhotoIds.1")]
    row = await Observation.get(id=db_id(rubbish["id"]))
    assert row.handled_on_spot_at is None and row.after_photo_ids == []
    assert (await Photo.get(id=db_id(after))).attached_at is None  # rolled back with the rest
    # Not the recorder: the supervising county chief (who may read the patrol) and a dispatcher.
    county = await mutate(
        client, ON_SPOT, city["tokens"]["chief.county"], observationId=rubbish["id"], afterPhotoIds=[theirs]
    )
    assert codes(county) == [("NOT_FOUND", "input.observationId")]
    dispatcher = await mutate(
        client, ON_SPOT, city["tokens"]["dispatcher"], observationId=rubbish["id"], afterPhotoIds=[after]
    )
    assert [e["code"] for e in dispatcher["userErrors"]] == ["FORBIDDEN"]
    # A note too long.
    long = await mutate(
        client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[after], note="x" * 2001
    )
    assert codes(long) == [("INVALID", "input.note")]

    done = await mutate(
        client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[after], note="fished it out"
    )
    assert done["userErrors"] == []
    node = done["observation"]
    assert node["status"] == "HANDLED_ON_SPOT" and node["handledOnSpotAt"] and node["caseReference"] is None
    assert node["afterPhotoIds"] == [after] and node["handlingNote"] == "fished it out"
    # A retry answers the same; other photos after the fact are a conflict.
    again = await mutate(
        client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[after], note="fished it out"
    )
    assert again["observation"] == node
    other = (await upload_simple(client, token, jpeg(seed=3)))["photo"]["id"]
    changed = await mutate(client, ON_SPOT, token, observationId=rubbish["id"], afterPhotoIds=[other])
    assert [e["code"] for e in changed["userErrors"]] == ["CONFLICT"]
    # Handled on the spot is never handed off too, and a handed-off one is not handled on the spot.
    handing = await mutate(client, ESCALATE, token, observationId=rubbish["id"])
    assert [e["code"] for e in handing["userErrors"]] == ["CONFLICT"]
    handed = await mutate(client, ESCALATE, token, observationId=sand["id"])
    assert handed["userErrors"] == []
    late = await mutate(client, ON_SPOT, token, observationId=sand["id"], afterPhotoIds=[other])
    assert [e["code"] for e in late["userErrors"]] == ["CONFLICT"]
    assert "follow it there" in late["userErrors"][0]["message"]

    # The patrol's figures: three found, one handed off, one solved on the spot, one open.
    read = (await gql_data(client, PROBLEMS, {"id": patrol["id"]}, token=token))["node"]
    assert read["problems"] == {"found": 3, "handedOff": 1, "handledOnSpot": 1, "open": 1}
    assert [o["status"] for o in read["observations"]] == ["HANDLED_ON_SPOT", "HANDED_OFF", "OPEN"]
    # Supervisors read the same figures; the after-photo follows the observation's visibility.
    county_read = await gql_data(client, PROBLEMS, {"id": patrol["id"]}, token=city["tokens"]["chief.county"])
    assert county_read["node"]["problems"]["handledOnSpot"] == 1
    photo = "query($id: ID!) { node(id: $id) { ... on Photo { id } } }"
    assert (await gql_data(client, photo, {"id": after}, token=city["tokens"]["chief.county"]))["node"]
    assert (await gql_data(client, photo, {"id": after}, token=city["tokens"]["dispatcher"]))["node"] is None
    # Announced once, for the office figures to come.
    events = await OutboxEvent.filter(kind="observation_handled_on_spot").values_list("subject_id", "data")
    assert events == [(db_id(rubbish["id"]), {"patrol": db_id(patrol["id"]), "by_volunteer": False})]


# --- item 7: social supervisors ------------------------------------------------------------------


async def test_the_office_enrolls_volunteers_and_others_may_not(client, city):
    area = city["areas"]["R-QH-02"]["id"]
    volunteer = city["users"]["volunteer.qh"]
    given = {"volunteerId": volunteer, "areaId": area, "validFrom": "2026-05-01"}
    first = await mutate(client, ENROLL, city["tokens"]["office.river"], **given)
    assert first["userErrors"] == [] and first["enrollment"]["area"]["code"] == "R-QH-02"
    again = await mutate(client, ENROLL, city["tokens"]["office.river"], **given)
    assert again["enrollment"]["id"] == first["enrollment"]["id"]  # a retry creates nothing twice
    for user in ("chief.county", "volunteer.qh", "dispatcher"):
        refused = await mutate(client, ENROLL, city["tokens"][user], **given)
        assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"], user
    chief = await mutate(
        client, ENROLL, city["tokens"]["admin"], **{**given, "volunteerId": city["users"]["chief.village"]}
    )
    assert codes(chief) == [("NOT_FOUND", "input.volunteerId")]
    backwards = await mutate(
        client,
        ENROLL,
        city["tokens"]["admin"],
        **{**given, "validFrom": "2026-06-01", "validTo": "2026-05-01"},
    )
    assert codes(backwards) == [("INVALID", "input.validTo")]
    # Ended, the enrollment no longer lets the volunteer patrol that area.
    ended = await mutate(client, ENROLL_END, city["tokens"]["office.river"],
                         enrollmentId=first["enrollment"]["id"], validTo="2026-05-05")  # fmt: skip
    assert ended["enrollment"]["validTo"] == "2026-05-05"
    late = await start(client, city, "volunteer.qh", "R-QH-02", "late")
    assert [e["code"] for e in late["userErrors"]] == ["FORBIDDEN"]
    mine = await gql_data(client, "{ myVolunteerEnrollments { area { code } validTo } }",
                          token=city["tokens"]["volunteer.qh"])  # fmt: skip
    assert {e["area"]["code"] for e in mine["myVolunteerEnrollments"]} == {"R-QH-01", "R-QH-02"}


async def test_a_volunteer_patrols_apart_and_cannot_act_as_a_chief(client, city):
    tokens, users = city["tokens"], city["users"]
    volunteer = tokens["volunteer.qh"]
    started = await start(client, city, "volunteer.qh", "R-QH-01", "v1")
    assert started["userErrors"] == [] and started["patrol"]["byVolunteer"] is True
    patrol_id = started["patrol"]["id"]
    assert started["patrol"]["chief"]["username"] == "volunteer.qh"  # counts for no chief
    not_enrolled = await start(client, city, "volunteer.qh", "R-QH-02", "v2")
    assert [e["code"] for e in not_enrolled["userErrors"]] == ["FORBIDDEN"]
    assert "enrolled" in not_enrolled["userErrors"][0]["message"]
    # A walk along the river, finished: judged for no chief, whatever its figures.
    coords = city["areas"]["R-QH-01"]["geometry"]["coordinates"]
    points = walk(coords, 900, random.Random(3))
    assert (await append(client, volunteer, patrol_id, points))["stored"] == 900
    assert (await finish(client, volunteer, patrol_id, T0 + timedelta(seconds=900)))["userErrors"] == []

    # Observations are recorded and may be handled on the spot ...
    found = (await observe(client, volunteer, patrol_id, "FLOATING_RUBBISH", "vo1"))["observation"]
    photo = (await upload_simple(client, volunteer, jpeg(seed=7)))["photo"]["id"]
    handled = await mutate(client, ON_SPOT, volunteer, observationId=found["id"], afterPhotoIds=[photo])
    assert handled["userErrors"] == [] and handled["observation"]["status"] == "HANDLED_ON_SPOT"
    # ... but acting as a chief is refused with a typed error each time.
    other = (await observe(client, volunteer, patrol_id, "SAND_MINING", "vo2"))["observation"]
    handoff = await mutate(client, ESCALATE, volunteer, observationId=other["id"])
    assert [e["code"] for e in handoff["userErrors"]] == ["FORBIDDEN"] and "民间河长" in handoff[
        "userErrors"
    ][0]["message"]
    assert await Report.all().count() == 0
    delegation = await mutate(client, DELEGATE, volunteer, assistantId=users["chief.village"],
                              validFrom="2026-05-01", validTo="2026-05-31")  # fmt: skip
    assert [e["code"] for e in delegation["userErrors"]] == ["FORBIDDEN"]
    compliance = await gql(client, COMPLIANCE, {"chief": users["chief.village"], "from": "2026-05-04",
                                                "to": "2026-05-10"}, token=volunteer)  # fmt: skip
    assert [e["extensions"]["code"] for e in compliance["errors"]] == ["FORBIDDEN"]
    # Chiefs-only data stays hidden: the village chief's patrol and assignments.
    chief_patrol = (await start(client, city, "chief.village", "R-QH-01", "c1"))["patrol"]["id"]
    seen = await gql_data(client, PROBLEMS, {"id": chief_patrol}, token=volunteer)
    assert seen["node"] is None
    # Nor can the volunteer be made a chief, or a chief's assistant.
    made_chief = await mutate(client, ASSIGN, tokens["admin"], chiefId=users["volunteer.qh"],
                              areaId=city["areas"]["R-QH-01"]["id"], level="VILLAGE", kind="RIVER",
                              validFrom="2026-05-01")  # fmt: skip
    assert codes(made_chief) == [("INVALID", "input.chiefId")]
    assistant = await mutate(client, DELEGATE, tokens["chief.village"], assistantId=users["volunteer.qh"],
                             validFrom="2026-05-01", validTo="2026-05-31")  # fmt: skip
    assert codes(assistant) == [("INVALID", "input.assistantId")]

    # Counted apart: not in the village chief's compliance, listed on their own for the office.
    verdicts = (await gql_data(client, COMPLIANCE, {"area": city["areas"]["R-QH-01"]["id"], "from": "2026-05-04",
                                                    "to": "2026-05-10"}, token=tokens["admin"]))["patrolCompliance"]  # fmt: skip
    assert {v["chief"]["username"] for v in verdicts} == {"chief.village", "chief.county"}
    assert all(p["patrolId"] != patrol_id for v in verdicts for p in v["patrols"])
    village = next(v for v in verdicts if v["chief"]["username"] == "chief.village")
    assert village["done"] == 0
    for viewer in ("office.river", "admin", "volunteer.qh"):
        listed = (await gql_data(client, VOLUNTEER_PATROLS, {}, token=tokens[viewer]))["volunteerPatrols"][
            "nodes"
        ]
        assert [(p["id"], p["byVolunteer"]) for p in listed] == [(patrol_id, True)], viewer
    in_area = await gql_data(
        client, VOLUNTEER_PATROLS, {"area": city["areas"]["R-QH-02"]["id"]}, token=tokens["admin"]
    )
    assert in_area["volunteerPatrols"]["nodes"] == []
    refused = await gql(client, VOLUNTEER_PATROLS, {}, token=tokens["chief.county"])
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    # The office reads the volunteer's patrol and its figures; other chiefs do not.
    office = (await gql_data(client, PROBLEMS, {"id": patrol_id}, token=tokens["office.river"]))["node"]
    assert office["problems"] == {"found": 2, "handedOff": 0, "handledOnSpot": 1, "open": 1}
    assert (await gql_data(client, PROBLEMS, {"id": patrol_id}, token=tokens["chief.forest"]))["node"] is None


async def test_without_a_chief_office_an_unhandled_kind_waits_in_the_dispatchers_triage(client, city):
    upsert = """mutation($input: DepartmentUpsertInput!) { departmentUpsert(input: $input) {
      department { code } userErrors { code field message } } }"""
    moved = {"code": "forest-office", "name": "示范市林长制办公室", "kind": "forestry_planning",
             "jurisdictionCode": "999900"}  # fmt: skip
    assert (await mutate(client, upsert, city["tokens"]["admin"], **moved))["userErrors"] == []
    token = city["tokens"]["chief.forest"]
    patrol = (await start(client, city, "chief.forest", "F-BS-01", "f"))["patrol"]
    other = (await observe(client, token, patrol["id"], "OTHER", "o", FOREST_POINT))["observation"]
    handed = await mutate(client, ESCALATE, token, observationId=other["id"])
    assert handed["userErrors"] == [] and handed["observation"]["status"] == "HANDED_OFF"
    case = await Case.get(reference=handed["observation"]["caseReference"])
    assert case.department_id is None  # TRIAGE: the dispatchers assign it
    assert case.routing_reason.endswith("but no such office covers this point")
