"""The authorization table (issue 15): every role against every kind of object and action.

One world per test (the fixtures give each test a fresh database): a resident's noise complaint (a
case routed to the West police, with an attached photo; its public-map twin) and an unattached photo
of theirs, a village river chief's patrol with its track, an observation with a photo and the
chief's assignment, the resident's and a staff member's accounts, a routing rule. Each role then reads by `node(id:)`, by lists, by media URL and by export,
changes and transitions, and walks ids. Whatever a role may not see must answer byte for byte like a
missing object (a neighbour's id tells nothing a nonexistent id does not); whatever it may see but
not do is a typed user error. There is no volunteer role in this product.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from strawberry import relay

from identity.models import User
from kernel import clock
from reports.models import Case, Department, RoutingRule
from tests.graphql_client import gql, gql_data
from tests.media.phone import auth, jpeg, upload_simple
from tests.patrols.test_patrols_api import OBSERVE, T0, append, finish, start, walk
from tests.privacy.helpers import access_log
from tests.reports.helpers import db_id, demo_sign_in, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

RESIDENT, NEIGHBOUR, ANONYMOUS = "resident", "neighbour", "anonymous"
STAFF = ("police.west", "forestry.staff")  # the case's department and another one
CHIEFS = ("chief.village", "chief.county", "chief.forest")  # the patroller, their supervisor, a stranger
ROLES = (ANONYMOUS, RESIDENT, NEIGHBOUR, *CHIEFS, *STAFF, "dispatcher", "admin")
MISSING = 100_000  # added to a row id: an id nothing has

# Who may see each object (node, lists), and who may see a photo's evidence (original, EXIF).
SEES = {
    "case": {RESIDENT, "police.west", "dispatcher", "admin"},
    "report": {RESIDENT},
    "photo": set(ROLES),  # its case is on the public map: its renditions are anyone's
    "loose": {RESIDENT},  # an unattached photo is its owner's alone
    "patrol": {"chief.village", "chief.county", "admin"},
    "observation": {"chief.village", "chief.county", "admin"},  # like its patrol
    "finding": {"chief.village", "chief.county", "admin"},  # the observation's photo
    "assignment": {"chief.village", "chief.county", "admin"},  # the village chief's, like the chief
    "account": {RESIDENT, "admin"},
    "colleague": {*STAFF, "dispatcher", "admin"},  # a staff account: staff see their colleagues
    "rule": {"dispatcher", "admin"},
    "public": set(ROLES),  # the case as the public map shows it
}
EVIDENCE = {"police.west", "dispatcher", "admin"}
TYPES = {
    "case": "Case",
    "report": "Report",
    "photo": "Photo",
    "loose": "Photo",
    "patrol": "Patrol",
    "observation": "Observation",
    "finding": "Photo",
    "assignment": "ChiefAssignment",
    "account": "User",
    "colleague": "User",
    "rule": "RoutingRule",
    "public": "PublicCase",
}
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
PHOTO = "query($id: ID!) { node(id: $id) { ... on Photo { originalUrl exifLocation { latitude } camera { make } } } }"
CASE_TRANSITION = """mutation($id: ID!) { caseTransition(input: {caseId: $id, action: ACCEPT, expectedVersion: 1}) {
  case { id } userErrors { code field message } } }"""
CASE_RATE = """mutation($id: ID!) { caseRate(input: {caseId: $id, rating: 1}) {
  case { id } userErrors { code field message } } }"""
PATROL_FINISH = """mutation($id: ID!) { patrolFinish(input: {patrolId: $id, finishedAt: "2026-05-06T02:00:00Z"}) {
  patrol { id } userErrors { code field message } } }"""
PATROL_APPEND = """mutation($id: ID!) { patrolTrackAppend(input: {patrolId: $id, points: [
  {seq: 9000, t: "2026-05-06T01:30:00Z", latitude: 30.26, longitude: 120.1, accuracy: 5}]}) {
  stored userErrors { code field message } } }"""


@dataclass
class World:
    tokens: dict[str, str | None]
    ids: dict[str, int]  # object -> row id
    marker: str  # in the resident's report only

    def gid(self, name: str, missing: bool = False) -> str:
        return relay.to_base64(TYPES[name], self.ids[name] + (MISSING if missing else 0))


async def build(client: httpx.AsyncClient) -> World:
    tokens: dict[str, str | None] = {ANONYMOUS: None}
    for role in (*CHIEFS, *STAFF, "dispatcher", "admin"):
        tokens[role] = await demo_sign_in(client, role)
    owner, resident_id = await resident(client)
    tokens[RESIDENT] = owner
    tokens[NEIGHBOUR], _ = await resident(client)
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    photo = (await upload_simple(client, owner, jpeg(seed=1)))["photo"]
    loose = (await upload_simple(client, owner, jpeg(seed=2)))["photo"]
    marker = "marker-7f3a9c"
    submitted = await submit_ok(
        client,
        owner,
        report_input("noise.neighbour", photoIds=[photo["id"]], description=f"Loud music {marker}"),
    )
    assert submitted["case"]["department"]["code"] == "police-west"
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code geometry } } }")
    area = next(a for a in areas["patrolAreas"]["nodes"] if a["code"] == "R-QH-01")
    city = {"tokens": tokens, "areas": {"R-QH-01": area}}
    patrol = (await start(client, city))["patrol"]
    chief = tokens["chief.village"]
    assert chief is not None
    points = walk(area["geometry"]["coordinates"], 60, random.Random(5))
    await append(client, chief, patrol["id"], points)
    finding = (await upload_simple(client, chief, jpeg(seed=4)))["photo"]
    observed = {"clientId": "o1", "patrolId": patrol["id"], "category": "FLOATING_RUBBISH",
                "location": {"latitude": points[30]["latitude"], "longitude": points[30]["longitude"]},
                "observedAt": points[30]["t"], "photoIds": [finding["id"]]}  # fmt: skip
    observation = (await gql_data(client, OBSERVE, {"input": observed}, chief))["patrolObservationRecord"]
    await finish(client, chief, patrol["id"], T0 + timedelta(seconds=59))
    [assignment] = (await gql_data(client, "{ myAssignments { id } }", token=chief))["myAssignments"]
    rule = await RoutingRule.all().order_by("id").first()
    assert rule is not None
    ids = {
        "case": db_id(submitted["case"]["id"]),
        "report": db_id(submitted["report"]["id"]),
        "photo": db_id(photo["id"]),
        "loose": db_id(loose["id"]),
        "patrol": db_id(patrol["id"]),
        "observation": db_id(observation["observation"]["id"]),
        "finding": db_id(finding["id"]),
        "assignment": db_id(assignment["id"]),
        "account": resident_id,
        "colleague": (await User.get(username="police.west")).id,
        "rule": rule.id,
        "public": db_id(submitted["case"]["id"]),
    }
    return World(tokens, ids, marker)


async def post(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> bytes:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )
    return response.content


async def same_as_missing(
    client: httpx.AsyncClient, world: World, role: str, query: str, name: str
) -> tuple[bytes, bool]:
    """The answer for the object, and whether it is byte-identical to the answer for a missing one."""
    token = world.tokens[role]
    real = await post(client, query, {"id": world.gid(name)}, token)
    missing = await post(client, query, {"id": world.gid(name, missing=True)}, token)
    return real, real == missing


async def get_same_as_missing(
    client: httpx.AsyncClient, token: str | None, path: str, row_id: int
) -> tuple[httpx.Response, bool]:
    """GET of the object's URL, and whether it answers like the URL of a missing one (a 401 or 404
    with the same body)."""
    real = await client.get(path.format(row_id), headers=auth(token))
    missing = await client.get(path.format(row_id + MISSING), headers=auth(token))
    same = (real.status_code, real.content) == (missing.status_code, missing.content)
    return real, same and real.status_code in (401, 404)


def user_error(body: bytes, field: str) -> str | None:
    """The code of the first typed user error (or top-level error) of a mutation's answer."""
    data = json.loads(body)
    if data.get("errors"):
        return data["errors"][0]["extensions"]["code"]
    errors = data["data"][field]["userErrors"]
    return errors[0]["code"] if errors else None


async def test_reads_by_node_answer_like_a_missing_object_unless_the_role_may_see(client):
    world = await build(client)
    wrong: list[tuple[str, str, str]] = []
    for role in ROLES:
        for name, seers in SEES.items():
            body, hidden = await same_as_missing(client, world, role, NODE, name)
            shown = json.loads(body).get("data", {}).get("node") is not None
            if (shown, hidden) != (role in seers, role not in seers):
                wrong.append((role, name, body.decode()))
    assert wrong == [], "\n".join(map(repr, wrong))


async def test_photo_evidence_and_media_urls_follow_the_case(client):
    world = await build(client)
    original = "/media/photos/{}/original"
    wrong: list[tuple[str, str, Any]] = []
    # A case's photo: evidence for the case's staff; an observation's: for its chief and overseers.
    photos = (("photo", EVIDENCE), ("finding", {"chief.village", "admin"}))
    for role in ROLES:
        token = world.tokens[role]
        for name, evidence_for in photos:
            seen = (await gql_data(client, PHOTO, {"id": world.gid(name)}, token))["node"]
            evidence = (
                seen is not None and seen["originalUrl"] is not None and seen["exifLocation"] is not None
            )
            if evidence != (role in evidence_for):
                wrong.append((role, f"{name} evidence fields", seen))
            got, hidden = await get_same_as_missing(client, token, original, world.ids[name])
            if (got.status_code == 200, hidden) != (role in evidence_for, role not in evidence_for):
                wrong.append((role, f"{name} original", got.status_code))
        # The owner of an unattached photo sees its renditions, never its original (nobody does).
        got, hidden = await get_same_as_missing(client, token, original, world.ids["loose"])
        if not hidden:
            wrong.append((role, "loose original", got.status_code))
    loose = (await gql_data(client, PHOTO.replace("originalUrl", "urls { display }"), {"id": world.gid("loose")},
                            world.tokens[RESIDENT]))["node"]  # fmt: skip
    display = loose["urls"]["display"].removeprefix("http://testserver")
    for role in ROLES:
        got = await client.get(display, headers=auth(world.tokens[role]))
        if (got.status_code == 200) != (role == RESIDENT) or got.status_code not in (200, 404):
            wrong.append((role, "loose display", got.status_code))
    assert wrong == [], "\n".join(map(repr, wrong))

    # Each refused attempt at the evidence is in the access log, marked refused; the reads are not.
    admin = world.tokens["admin"]
    assert admin is not None
    refusals = await access_log(client, admin, subject=world.gid("photo"), refused=True)
    refused_roles = {r["role"] for r in refusals if r["kind"] == "ORIGINAL_PHOTO"}
    assert refused_roles == {"CITIZEN", "CHIEF", "STAFF"}
    assert {r["userId"] for r in refusals} == {
        (await gql_data(client, "{ me { id } }", token=world.tokens[role]))["me"]["id"]
        for role in ROLES
        if role not in EVIDENCE | {ANONYMOUS, RESIDENT}
    }


async def test_lists_show_only_what_the_role_may_see(client):
    world = await build(client)
    police = (await Department.get(code="police-west")).id
    queue = """query($d: ID) { departmentQueue(departmentId: $d, first: 50) { nodes { id } } }"""
    department = relay.to_base64("Department", police)
    wrong: list[tuple[str, str, Any]] = []
    for role in ROLES:
        token = world.tokens[role]
        body = await gql(client, queue, {"d": department}, token)
        if body.get("errors"):
            listed: set[int] = set()
            if body["errors"][0]["extensions"]["code"] not in ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"):
                wrong.append((role, "queue", body["errors"]))
        else:
            listed = {db_id(n["id"]) for n in body["data"]["departmentQueue"]["nodes"]}
        if (world.ids["case"] in listed) != (role in SEES["case"] - {RESIDENT}):
            wrong.append((role, "queue", listed))
        for query, key, name in (
            ("{ myReports(first: 50) { nodes { id } } }", "myReports", "report"),
            ("{ myPatrols(first: 50) { nodes { id } } }", "myPatrols", "patrol"),
        ):
            body = await gql(client, query, {}, token)
            nodes = [] if body.get("errors") else body["data"][key]["nodes"]
            owner = {"report": RESIDENT, "patrol": "chief.village"}[name]
            if (world.gid(name) in {n["id"] for n in nodes}) != (role == owner):
                wrong.append((role, key, nodes))
        users = await gql(client, "{ users(first: 100) { nodes { id } } }", {}, token)
        ids = set() if users.get("errors") else {n["id"] for n in users["data"]["users"]["nodes"]}
        if (world.gid("account") in ids) != (role == "admin"):
            wrong.append((role, "users", ids))
    assert wrong == [], "\n".join(map(repr, wrong))


async def test_exports_give_nobody_another_persons_data(client):
    world = await build(client)
    wrong: list[tuple[str, str, Any]] = []
    for role in ROLES:
        token = world.tokens[role]
        body = await gql(client, "{ myDataExport }", {}, token)
        if body.get("errors"):
            code = body["errors"][0]["extensions"]["code"]
            if role == RESIDENT or code not in ("UNAUTHENTICATED", "FORBIDDEN"):
                wrong.append((role, "export", code))
        elif (world.marker in json.dumps(body["data"])) != (role == RESIDENT):
            wrong.append((role, "export", body["data"]))
        for fmt in ("gpx", "geojson"):
            got, hidden = await get_same_as_missing(
                client, token, "/patrols/{}/track." + fmt, world.ids["patrol"]
            )
            if (got.status_code == 200, hidden) != (role in SEES["patrol"], role not in SEES["patrol"]):
                wrong.append((role, fmt, got.status_code))
    assert wrong == [], "\n".join(map(repr, wrong))
    # Refused track exports by signed-in accounts are in the access log (anonymous callers name nobody).
    admin = world.tokens["admin"]
    assert admin is not None
    refusals = await access_log(client, admin, subject=world.gid("patrol"), kind="TRACK", refused=True)
    once = ["CITIZEN", "CITIZEN", "CHIEF", "STAFF", "STAFF", "DISPATCHER"]  # both formats each
    assert sorted(r["role"] for r in refusals) == sorted(once * 2)


async def test_changes_and_transitions_by_others_are_refused_and_change_nothing(client):
    world = await build(client)
    before = await Case.get(id=world.ids["case"])
    wrong: list[tuple[str, str, Any]] = []
    changes = (
        (CASE_TRANSITION, "caseTransition", "case", {"police.west"}),  # its department accepts
        (CASE_RATE, "caseRate", "case", {RESIDENT}),  # its reporter rates
        (PATROL_APPEND, "patrolTrackAppend", "patrol", {"chief.village"}),
        (PATROL_FINISH, "patrolFinish", "patrol", {"chief.village"}),
    )
    for query, field, name, allowed in changes:
        for role in ROLES:
            if role in allowed:
                continue
            body, hidden = await same_as_missing(client, world, role, query, name)
            # A typed refusal always; for a role that may not even see the object, the very answer a
            # missing one gets (roles that may never do it are FORBIDDEN for both alike).
            if user_error(body, field) is None or (role not in SEES[name] and not hidden):
                wrong.append((role, field, body.decode()))
    assert wrong == [], "\n".join(map(repr, wrong))
    after = await Case.get(id=world.ids["case"])
    assert (after.version, after.status) == (before.version, before.status)
    patrol = await gql_data(
        client, "query($id: ID!) { node(id: $id) { ... on Patrol { pointCount status } } }",
        {"id": world.gid("patrol")}, world.tokens["chief.village"],
    )  # fmt: skip
    assert patrol["node"] == {"pointCount": 60, "status": "FINISHED"}


async def test_reveals_need_an_admin_and_a_reason_and_accounts_go_once(client):
    world = await build(client)
    reveal = """mutation($id: ID!, $reason: String) { reporterReveal(input: {reportId: $id, reason: $reason}) {
      reporter { userId } userErrors { code field message } } }"""
    for role in ROLES:
        for reason in (None, "  ", "court order 12"):
            body = await gql(
                client, reveal, {"id": world.gid("report"), "reason": reason}, world.tokens[role]
            )
            code = user_error(json.dumps(body).encode(), "reporterReveal")
            if role != "admin":
                assert code in ("UNAUTHENTICATED", "FORBIDDEN"), (role, body)
            elif reason == "court order 12":
                assert code is None and body["data"]["reporterReveal"]["reporter"]
            else:
                assert body["data"]["reporterReveal"] == {
                    "reporter": None,
                    "userErrors": [{"code": "INVALID", "field": ["input", "reason"], "message": body["data"][
                        "reporterReveal"]["userErrors"][0]["message"]}],
                }  # fmt: skip
    admin = world.tokens["admin"]
    assert admin is not None
    assert len(await access_log(client, admin, kind="REVEAL")) == 1  # only the reveal with a reason

    delete = "mutation { accountDelete(input: {confirm: true}) { deleted userErrors { code } } }"
    token = world.tokens[NEIGHBOUR]
    first = await gql_data(client, delete, {}, token)
    assert first["accountDelete"] == {"deleted": True, "userErrors": []}
    again = await client.post("/graphql", json={"query": delete}, headers=auth(token))
    assert again.status_code == 401 and again.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def photo_seers(client: httpx.AsyncClient, world: World, photo: str) -> set[str]:
    """The roles whose `node(id:)` shows the photo; every other role must get a missing photo's answer."""
    seers = set()
    for role in ROLES:
        real = await post(client, NODE, {"id": photo}, world.tokens[role])
        missing = await post(
            client, NODE, {"id": relay.to_base64("Photo", db_id(photo) + MISSING)}, world.tokens[role]
        )
        if real != missing:
            seers.add(role)
    return seers


async def test_photos_leave_the_public_map_with_their_case(client):
    world = await build(client)
    dispatcher = world.tokens["dispatcher"]
    assert dispatcher is not None
    transition = (
        """mutation($input: CaseTransitionInput!) { caseTransition(input: $input) { userErrors { code } } }"""
    )
    merge = """mutation($input: CaseMergeInput!) { caseMerge(input: $input) { userErrors { code } } }"""
    owner = world.tokens[RESIDENT]
    assert owner is not None
    display = "query($id: ID!) { node(id: $id) { ... on Photo { urls { display } } } }"
    shown = (await gql_data(client, display, {"id": world.gid("photo")}, owner))["node"]["urls"]["display"]
    assert (await client.get(shown.removeprefix("http://testserver"))).status_code == 200

    # Rejected: the case leaves the map, and so do its photos (its staff keep them as evidence).
    case = relay.to_base64("Case", world.ids["case"])
    rejected = {"caseId": case, "action": "REJECT", "reason": "Not a nuisance"}
    assert (await gql_data(client, transition, {"input": rejected}, dispatcher))["caseTransition"][
        "userErrors"
    ] == []
    assert await photo_seers(client, world, world.gid("photo")) == {RESIDENT, *EVIDENCE}
    assert (await client.get(shown.removeprefix("http://testserver"))).status_code == 404

    # Merged into a case in triage (not on the map): the report's photos follow the target case.
    photo = (await upload_simple(client, owner, jpeg(seed=3)))["photo"]
    source = (await submit_ok(client, owner, report_input("noise.neighbour", photoIds=[photo["id"]])))["case"]
    neighbour = world.tokens[NEIGHBOUR]
    assert neighbour is not None
    target = (await submit_ok(client, neighbour, report_input("noise.neighbour", (25.0, 130.0))))["case"]
    assert target["status"] == "TRIAGE" and await photo_seers(client, world, photo["id"]) == set(ROLES)
    merged = await gql_data(
        client, merge, {"input": {"caseId": source["id"], "intoCase": target["id"]}}, dispatcher
    )
    assert merged["caseMerge"]["userErrors"] == []
    assert await photo_seers(client, world, photo["id"]) == {RESIDENT, "dispatcher", "admin"}
    original = f"/media/photos/{db_id(photo['id'])}/original"
    assert (await client.get(original, headers=auth(world.tokens["police.west"]))).status_code == 404

    # Split out of a routed case into a case of its own that lands in triage: its photos go with it.
    route = """mutation($input: CaseRouteInput!) { caseRoute(input: $input) { userErrors { code } } }"""
    routed = {"caseId": target["id"], "departmentCode": "police-west"}
    assert (await gql_data(client, route, {"input": routed}, dispatcher))["caseRoute"]["userErrors"] == []
    photo = (await upload_simple(client, owner, jpeg(seed=5)))["photo"]
    joined = await submit_ok(
        client, owner, report_input("noise.neighbour", (25.0, 130.0), photoIds=[photo["id"]])
    )
    assert joined["case"]["id"] == target["id"] and await photo_seers(client, world, photo["id"]) == set(
        ROLES
    )
    split = """mutation($input: ReportSplitInput!) { reportSplit(input: $input) { userErrors { code } } }"""
    parted = await gql_data(client, split, {"input": {"reportId": joined["report"]["id"]}}, dispatcher)
    assert parted["reportSplit"]["userErrors"] == []
    assert await photo_seers(client, world, photo["id"]) == {RESIDENT, "dispatcher", "admin"}
