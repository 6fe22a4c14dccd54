"""What residents see before and after submitting, the public map, and admins editing routing data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from strawberry import relay

from reports.models import Case, Category, Department, Jurisdiction, RoutingRule
from server.seed import seed_demo
from tests.graphql_client import gql, gql_data
from tests.reports.helpers import (
    EAST,
    OCEAN,
    WEST,
    db_id,
    demo_sign_in,
    public_case_id,
    report_input,
    resident,
    submit,
    submit_ok,
    working_cases,
)

pytestmark = pytest.mark.usefixtures("demo")

CATEGORIES_AT = (
    "query($l: LocationInput!) { categoriesAt(location: $l) { code group nameEn evidenceSchema } }"
)
NEARBY = """query($l: LocationInput!, $c: String!) { nearbyCases(location: $l, categoryCode: $c) {
  distanceM case { id reference status reporterCount location { latitude longitude } category { code } } } }"""
MY_REPORTS = """query($after: String) { myReports(first: 2, after: $after) {
  edges { node { id description case { reference status department { code } responseDueAt resolutionDueAt
  routingReason timeline { kind toStatus at } } } } pageInfo { hasNextPage endCursor } } }"""
PUBLIC = """query($b: BBoxInput!, $c: [String!], $first: Int) { publicCases(bbox: $b, categoryCodes: $c, first: $first) {
  nodes { id reference status reporterCount location { latitude longitude } category { code } department { code } photoIds }
  pageInfo { hasNextPage } } }"""
CITY_BOX = {"minLatitude": 30.18, "minLongitude": 120.05, "maxLatitude": 30.34, "maxLongitude": 120.25}


def loc(point: tuple[float, float]) -> dict[str, float]:
    return {"latitude": point[0], "longitude": point[1]}


async def test_categories_at_a_point(client: httpx.AsyncClient) -> None:
    codes = [c["code"] for c in (await gql_data(client, CATEGORIES_AT, {"l": loc(WEST)}))["categoriesAt"]]
    assert "noise.construction" in codes and "forest.fire" in codes
    assert "other.other" not in codes  # nobody handles it in the demo city
    assert (await gql_data(client, CATEGORIES_AT, {"l": loc(OCEAN)}))["categoriesAt"] == []
    body = await gql(client, CATEGORIES_AT, {"l": {"latitude": 91, "longitude": 0}})
    assert body["errors"][0]["extensions"]["code"] == "INVALID"


async def test_nearby_cases_offer_open_public_cases_of_the_category(client: httpx.AsyncClient) -> None:
    one, _ = await resident(client)
    first = await submit_ok(client, one, report_input("noise.construction", WEST))
    await submit_ok(client, one, report_input("noise.construction", EAST))
    await submit_ok(client, one, report_input("noise.construction", OCEAN))  # triage: private
    near = (WEST[0] + 0.001, WEST[1])
    found = (await gql_data(client, NEARBY, {"l": loc(near), "c": "noise.construction"}))["nearbyCases"]
    assert [f["case"]["id"] for f in found] == [public_case_id(first["case"]["id"])]
    assert 100 <= found[0]["distanceM"] <= 120
    assert (await gql_data(client, NEARBY, {"l": loc(near), "c": "noise.vehicle"}))["nearbyCases"] == []
    assert (await gql_data(client, NEARBY, {"l": loc(OCEAN), "c": "noise.construction"}))["nearbyCases"] == []


async def test_nearby_cases_are_the_nearest_of_many(client: httpx.AsyncClient) -> None:
    """More open cases around the point than the search hands over (20): the nearest five come first,
    although the index walks them from the farthest (lowest latitude) up."""
    ids = await working_cases(30, datetime.now(UTC) + timedelta(days=3), category="noise.construction")
    for step, case_id in enumerate(reversed(ids), start=1):  # the last created is the nearest
        south = WEST[0] - step * 0.00005  # ~5.6 m apart: all thirty in the search box
        await Case.filter(id=case_id).update(latitude=south, public_latitude=south)
    found = (await gql_data(client, NEARBY, {"l": loc(WEST), "c": "noise.construction"}))["nearbyCases"]
    assert [db_id(f["case"]["id"]) for f in found] == ids[::-1][:5]
    distances = [f["distanceM"] for f in found]
    assert distances == sorted(distances) and distances[0] <= 10  # told in tens of metres


async def test_my_reports_show_status_department_deadline_and_timeline(client: httpx.AsyncClient) -> None:
    mine, _ = await resident(client)
    other, _ = await resident(client)
    for point in (WEST, EAST, OCEAN):
        await submit_ok(client, mine, report_input("noise.commercial", point, description=f"at {point}"))
    theirs = await submit_ok(client, other, report_input("light.led_billboard", WEST))

    page = (await gql_data(client, MY_REPORTS, token=mine))["myReports"]
    assert page["pageInfo"]["hasNextPage"] is True
    newest = page["edges"][0]["node"]
    assert newest["case"]["status"] == "TRIAGE" and newest["case"]["department"] is None
    routed = page["edges"][1]["node"]["case"]
    assert routed["department"]["code"] == "urban-east" and routed["resolutionDueAt"]
    assert routed["routingReason"] is None
    assert [t["kind"] for t in routed["timeline"]] == ["submit", "route"]
    rest = await gql_data(client, MY_REPORTS, {"after": page["pageInfo"]["endCursor"]}, token=mine)
    assert len(rest["myReports"]["edges"]) == 1 and rest["myReports"]["pageInfo"]["hasNextPage"] is False

    # Another resident's report and case answer exactly like missing ones.
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await gql_data(client, node, {"id": theirs["report"]["id"]}, token=mine))["node"] is None
    assert (await gql_data(client, node, {"id": theirs["case"]["id"]}, token=mine))["node"] is None
    assert (await gql_data(client, node, {"id": theirs["case"]["id"]}))["node"] is None
    assert (await gql(client, MY_REPORTS))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_public_feed_is_anonymized_and_coarsens_home_related_locations(
    client: httpx.AsyncClient,
) -> None:
    token, _ = await resident(client)
    home = (30.261234, 120.101234)
    neighbour_noise = await submit_ok(client, token, report_input("noise.neighbour", home))
    construction = await submit_ok(client, token, report_input("noise.construction", EAST))
    await submit_ok(client, token, report_input("noise.construction", OCEAN))

    feed = (await gql_data(client, PUBLIC, {"b": CITY_BOX}))["publicCases"]["nodes"]
    by_id = {n["id"]: n for n in feed}
    assert set(by_id) == {
        public_case_id(neighbour_noise["case"]["id"]),
        public_case_id(construction["case"]["id"]),
    }
    shown = by_id[public_case_id(neighbour_noise["case"]["id"])]["location"]
    exact = neighbour_noise["report"]["location"]
    assert shown != exact  # a home is never pinned exactly
    from kernel.geo import haversine_m

    assert 1 < haversine_m(shown["latitude"], shown["longitude"], exact["latitude"], exact["longitude"]) < 200
    # A second report from the same flat lands in the same cell: nothing to average.
    other = await submit_ok(client, token, report_input("noise.neighbour", (home[0] + 0.00001, home[1])))
    assert other["case"]["id"] == neighbour_noise["case"]["id"]
    open_spot = by_id[public_case_id(construction["case"]["id"])]["location"]
    assert open_spot == construction["report"]["location"]

    filtered = await gql_data(client, PUBLIC, {"b": CITY_BOX, "c": ["noise.neighbour"]})
    assert len(filtered["publicCases"]["nodes"]) == 1
    # The feed type has no reporter, description or evidence fields at all.
    body = await gql(
        client, "query($b: BBoxInput!) { publicCases(bbox: $b) { nodes { description } } }", {"b": CITY_BOX}
    )
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    bad = await gql(client, PUBLIC, {"b": {**CITY_BOX, "minLatitude": 95}})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"
    too_many = await gql(client, PUBLIC, {"b": CITY_BOX, "first": 1000})
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID"


async def test_seed_is_idempotent() -> None:
    counts = [await m.all().count() for m in (Category, Department, Jurisdiction, RoutingRule)]
    await seed_demo()
    assert [await m.all().count() for m in (Category, Department, Jurisdiction, RoutingRule)] == counts
    assert await Department.filter(jurisdiction_id=None).count() == 0


CATEGORY_UPDATE = """mutation($input: CategoryUpdateInput!) { categoryUpdate(input: $input) {
  category { code nameEn duplicateRadiusM slaPolicy } userErrors { code field message } } }"""
RULE_UPSERT = """mutation($input: RoutingRuleUpsertInput!) { routingRuleUpsert(input: $input) {
  rule { code scope source } userErrors { code field message } } }"""


async def test_admin_edits_categories_and_only_admins_may(client: httpx.AsyncClient) -> None:
    admin = await demo_sign_in(client, "admin")
    staff = await demo_sign_in(client, "urban.west")
    change = {"code": "noise.construction", "nameEn": "Building-site noise", "duplicateRadiusM": 50.0}
    forbidden = (await gql_data(client, CATEGORY_UPDATE, {"input": change}, token=staff))["categoryUpdate"]
    assert forbidden["userErrors"][0]["code"] == "FORBIDDEN"
    done = (await gql_data(client, CATEGORY_UPDATE, {"input": change}, token=admin))["categoryUpdate"]
    assert done["category"] == {
        "code": "noise.construction",
        "nameEn": "Building-site noise",
        "duplicateRadiusM": 50.0,
        "slaPolicy": "hotline_5wd",
    }
    for bad, field in (
        ({"slaPolicy": "whenever"}, "slaPolicy"),
        ({"evidenceSchema": {"db": {"type": "decibels"}}}, "evidenceSchema"),
        ({"duplicateRadiusM": -5.0}, "duplicateRadiusM"),
    ):
        result = await gql_data(
            client, CATEGORY_UPDATE, {"input": {"code": "noise.construction", **bad}}, token=admin
        )
        assert result["categoryUpdate"]["userErrors"][0]["field"] == ["input", field]

    # The new 50 m radius applies to the very next submission: the cached router was invalidated.
    token, _ = await resident(client)
    first = await submit_ok(client, token, report_input("noise.construction", WEST))
    apart = await submit_ok(client, token, report_input("noise.construction", (WEST[0] + 0.001, WEST[1])))
    assert apart["case"]["id"] != first["case"]["id"]


async def test_admin_adds_a_city_override_rule_that_routes_the_next_report(client: httpx.AsyncClient) -> None:
    admin = await demo_sign_in(client, "admin")
    token, _ = await resident(client)
    rule = {
        "code": "demo.light.billboard.east",
        "scope": "CITY",
        "category": "light.led_billboard",
        "departmentCode": "eco",
        "jurisdictionCode": "999902",
        "source": "Demo City Light Pollution Measures Art. 9 (fictional)",
    }
    result = (await gql_data(client, RULE_UPSERT, {"input": rule}, token=admin))["routingRuleUpsert"]
    assert result["userErrors"] == [] and result["rule"]["scope"] == "CITY"
    east = await submit_ok(client, token, report_input("light.led_billboard", EAST))
    west = await submit_ok(client, token, report_input("light.led_billboard", WEST))
    assert east["case"]["department"]["code"] == "eco"
    assert west["case"]["department"]["code"] == "urban-west"

    before = await RoutingRule.all().count()
    broken = {**rule, "code": "demo.bad", "departmentCode": "no-such-department"}
    errors = (await gql_data(client, RULE_UPSERT, {"input": broken}, token=admin))["routingRuleUpsert"][
        "userErrors"
    ]
    assert errors[0]["code"] == "INVALID" and "no-such-department" in errors[0]["message"]
    assert await RoutingRule.all().count() == before  # refused and rolled back
    no_window = {**rule, "code": "demo.bad2", "window": {"from": "25:00", "to": "06:00"}}
    errors = (await gql_data(client, RULE_UPSERT, {"input": no_window}, token=admin))["routingRuleUpsert"][
        "userErrors"
    ]
    assert errors[0]["code"] == "INVALID"

    delete = "mutation($input: RoutingRuleDeleteInput!) { routingRuleDelete(input: $input) { deletedCode userErrors { code } } }"
    assert (await gql_data(client, delete, {"input": {"code": rule["code"]}}, token=admin))[
        "routingRuleDelete"
    ]["deletedCode"]
    again = await submit_ok(client, token, report_input("light.led_billboard", (EAST[0] + 0.05, EAST[1])))
    assert again["case"]["department"]["code"] == "urban-east"
    gone = (await gql_data(client, delete, {"input": {"code": rule["code"]}}, token=admin))[
        "routingRuleDelete"
    ]
    assert gone["userErrors"][0]["code"] == "NOT_FOUND"


async def test_admin_imports_a_jurisdiction_and_gives_it_a_department(client: httpx.AsyncClient) -> None:
    admin = await demo_sign_in(client, "admin")
    token, _ = await resident(client)
    island = {
        "type": "Polygon",
        "coordinates": [[[129.9, 24.9], [130.1, 24.9], [130.1, 25.1], [129.9, 25.1], [129.9, 24.9]]],
    }
    imp = """mutation($input: JurisdictionImportInput!) { jurisdictionImport(input: $input) {
      jurisdictions { code name } userErrors { code field message } } }"""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": "999990", "name": "Isle"}, "geometry": island}
        ],
    }
    result = (await gql_data(client, imp, {"input": {"geojson": collection}}, token=admin))[
        "jurisdictionImport"
    ]
    assert result["jurisdictions"] == [{"code": "999990", "name": "Isle"}]
    upsert = """mutation($input: DepartmentUpsertInput!) { departmentUpsert(input: $input) { department { code } userErrors { code field } } }"""
    dept = {
        "code": "isle-water",
        "name": "Isle Water",
        "kind": "river_chief_office",
        "jurisdictionCode": "999990",
    }
    assert (await gql_data(client, upsert, {"input": dept}, token=admin))["departmentUpsert"]["department"][
        "code"
    ] == "isle-water"
    routed = await submit_ok(client, token, report_input("water.floating_rubbish", OCEAN))
    assert routed["case"]["department"]["code"] == "isle-water"

    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "x"},
                "geometry": {"type": "Point", "coordinates": [1, 2]},
            }
        ],
    }
    errors = (await gql_data(client, imp, {"input": {"geojson": bad}}, token=admin))["jurisdictionImport"][
        "userErrors"
    ]
    assert errors[0]["field"] == ["input", "geojson", "features", "0", "geometry"]
    missing = (await gql_data(client, upsert, {"input": {**dept, "jurisdictionCode": "nope"}}, token=admin))[
        "departmentUpsert"
    ]
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"
    # A second urban-management department for the same district would make routing ambiguous.
    clash = {
        "code": "urban-west-2",
        "name": "Clash",
        "kind": "urban_management",
        "jurisdictionCode": "999901",
    }
    clash_errors = (await gql_data(client, upsert, {"input": clash}, token=admin))["departmentUpsert"][
        "userErrors"
    ]
    assert clash_errors[0]["code"] == "INVALID"
    assert not await Department.exists(code="urban-west-2")


async def test_routing_rules_are_listed_for_dispatchers_with_sources(client: httpx.AsyncClient) -> None:
    dispatcher = await demo_sign_in(client, "dispatcher")
    token, _ = await resident(client)
    query = "{ routingRules(first: 100) { nodes { code scope source } } }"
    rules = (await gql_data(client, query, token=dispatcher))["routingRules"]["nodes"]
    assert any(r["code"] == "demo.odor.restaurant_fumes" and r["scope"] == "CITY" for r in rules)
    assert all(r["source"] for r in rules)
    assert (await gql(client, query, token=token))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_case_reference_is_unique_and_the_case_knows_its_photos_are_public(
    client: httpx.AsyncClient,
) -> None:
    token, _ = await resident(client)
    a = await submit_ok(client, token, report_input("noise.construction", WEST))
    b = await submit_ok(client, token, report_input("noise.construction", EAST))
    assert a["case"]["reference"] != b["case"]["reference"]
    assert (await Case.get(id=db_id(a["case"]["id"]))).public
    assert relay.GlobalID.from_id(public_case_id(a["case"]["id"])).type_name == "PublicCase"
    assert (await submit(client, token, report_input(clientId="x" * 65)))["userErrors"][0]["field"] == [
        "input",
        "clientId",
    ]
