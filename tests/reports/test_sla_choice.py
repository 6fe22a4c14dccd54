"""Which SLA policy a case runs on, over HTTP: chosen when a department first gets the case, from its
priority then and the department's region; kept when the priority changes later or the case is re-routed;
chosen again when a correction changes its category."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from reports import store
from reports.datafile import read_json
from reports.sla import Span, SpanUnit, load_sla_policies, resolution_due, response_due
from reports.store import working_calendar
from server.settings import Settings
from tests.conftest import make_settings
from tests.graphql_client import gql_data
from tests.reports.helpers import EAST, OCEAN, WEST, demo_sign_in, report_input, resident, submit_ok
from tests.reports.test_casework import MONDAY, RECATEGORIZE, ROUTE, at, ok
from tests.reports.test_deadlines import PRIORITY, _decide, _request

pytestmark = pytest.mark.usefixtures("demo")

HOTLINE = load_sla_policies()["hotline_5wd"]
DUES = """query($id: ID!) { node(id: $id) { ... on Case {
  priority slaPolicy responseDueAt resolutionDueAt department { code } } } }"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(media_root=tmp_path / "media", access_token_seconds=90 * 86400)


async def dues(client: httpx.AsyncClient, token: str, case_id: str) -> dict[str, Any]:
    return (await gql_data(client, DUES, {"id": case_id}, token=token))["node"]


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def route(client: httpx.AsyncClient, token: str, case_id: str, department: str) -> None:
    result = await gql_data(
        client, ROUTE, {"input": {"caseId": case_id, "departmentCode": department}}, token=token
    )
    assert result["caseRoute"]["userErrors"] == []


async def set_priority(client: httpx.AsyncClient, token: str, case_id: str, priority: str) -> None:
    result = await gql_data(
        client, PRIORITY, {"input": {"caseId": case_id, "priority": priority}}, token=token
    )
    assert result["casePrioritySet"]["userErrors"] == []


async def test_a_case_marked_urgent_in_triage_runs_on_the_urgent_policy_once_routed(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    citizen, _ = await resident(client)
    dispatcher = await demo_sign_in(client, "dispatcher")
    # Two hotline-policy cases nobody could route (outside every jurisdiction): the dispatcher marks one
    # URGENT in triage, then routes both.
    urgent = (await submit_ok(client, citizen, report_input("noise.neighbour", OCEAN)))["case"]["id"]
    normal = (await submit_ok(client, citizen, report_input("noise.construction", OCEAN)))["case"]["id"]
    assert (await dues(client, dispatcher, urgent))["slaPolicy"] is None  # no department yet, no choice
    await set_priority(client, dispatcher, urgent, "URGENT")
    routed = MONDAY + timedelta(hours=1)
    at(routed)
    for case_id in (urgent, normal):
        await route(client, dispatcher, case_id, "police-west")

    seen = await dues(client, dispatcher, urgent)
    assert seen["slaPolicy"] == "urgent_24h"
    # Round the clock: 2 hours to respond, 24 to resolve.
    assert moment(seen["responseDueAt"]) == routed + timedelta(hours=2)
    assert moment(seen["resolutionDueAt"]) == routed + timedelta(hours=24)
    seen = await dues(client, dispatcher, normal)
    assert seen["slaPolicy"] == "hotline_5wd"
    assert moment(seen["responseDueAt"]) == response_due(HOTLINE, routed, working_calendar())
    assert moment(seen["resolutionDueAt"]) == resolution_due(HOTLINE, routed, working_calendar())
    # Staff see the policy; the resident who reported it does not.
    assert (await dues(client, citizen, urgent))["slaPolicy"] is None


async def test_a_later_priority_or_a_reroute_keeps_the_policy(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, _ = await resident(client)
    dispatcher = await demo_sign_in(client, "dispatcher")
    case_id = (await submit_ok(client, citizen, report_input("noise.neighbour", WEST)))["case"]["id"]
    before = await dues(client, dispatcher, case_id)
    assert (before["slaPolicy"], before["department"]["code"]) == ("hotline_5wd", "police-west")
    assert moment(before["resolutionDueAt"]) == resolution_due(HOTLINE, MONDAY, working_calendar())

    # Raised after dispatch (by a dispatcher here; the escalation pass raises it too): the deadlines the
    # department is working against stay.
    at(MONDAY + timedelta(hours=1))
    await set_priority(client, dispatcher, case_id, "URGENT")
    after = await dues(client, dispatcher, case_id)
    assert after["priority"] == "URGENT"
    assert {k: after[k] for k in ("slaPolicy", "responseDueAt", "resolutionDueAt")} == {
        k: before[k] for k in ("slaPolicy", "responseDueAt", "resolutionDueAt")
    }

    # A plain re-route keeps the policy: the new department gets a fresh response clock on it, and the
    # resolution time still counts from the first dispatch.
    rerouted = MONDAY + timedelta(hours=3)
    at(rerouted)
    await route(client, dispatcher, case_id, "urban-west")
    moved = await dues(client, dispatcher, case_id)
    assert moved["slaPolicy"] == "hotline_5wd"
    assert moment(moved["responseDueAt"]) == response_due(HOTLINE, rerouted, working_calendar())
    assert moved["resolutionDueAt"] == before["resolutionDueAt"]


async def test_a_category_correction_chooses_again_and_drops_extensions_granted_under_the_old_policy(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    citizen, _ = await resident(client)
    dispatcher = await demo_sign_in(client, "dispatcher")
    staff = await demo_sign_in(client, "police.west")
    case_id = (await submit_ok(client, citizen, report_input("noise.neighbour", WEST)))["case"]["id"]
    await ok(client, staff, case_id, "ACCEPT")
    asked = await _request(client, staff, case_id, amount=2)
    assert (await _decide(client, dispatcher, asked["extension"]["id"]))["userErrors"] == []
    calendar = working_calendar()
    extended = Span(2, SpanUnit.WORKING_DAYS).due(resolution_due(HOTLINE, MONDAY, calendar), calendar)
    assert moment((await dues(client, dispatcher, case_id))["resolutionDueAt"]) == extended

    # The category was wrong: a forest fire, which re-routes and runs on the urgent policy. Two working
    # days are not two hours: the urgent policy's own time counts, from the first dispatch.
    changed = await gql_data(
        client, RECATEGORIZE, {"input": {"caseId": case_id, "categoryCode": "forest.fire"}}, token=dispatcher
    )
    assert changed["caseCategoryChange"]["userErrors"] == []
    moved = await dues(client, dispatcher, case_id)
    assert (moved["slaPolicy"], moment(moved["resolutionDueAt"])) == (
        "urgent_24h",
        MONDAY + timedelta(hours=24),
    )


@pytest.fixture
def west_district_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped policies plus a demo variant: hotline cases given to the demo city's West District
    (region 999901) run on the 15-working-day policy."""
    data = read_json("sla_policies.json")
    hotline = next(p for p in data["policies"] if p["code"] == "hotline_5wd")
    hotline["variants"].append({"region": "999901", "use": "complaint_15wd", "source": "test only"})
    path = tmp_path / "sla_policies.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(store, "load_sla_policies", lambda: load_sla_policies(path))
    store.sla_policies.cache_clear()
    yield
    store.sla_policies.cache_clear()


@pytest.mark.usefixtures("west_district_variant")
async def test_a_region_variant_applies_to_departments_in_that_region_only(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, _ = await resident(client)
    dispatcher = await demo_sign_in(client, "dispatcher")
    west = (await submit_ok(client, citizen, report_input("noise.neighbour", WEST)))["case"]["id"]
    east = (await submit_ok(client, citizen, report_input("noise.neighbour", EAST)))["case"]["id"]
    seen = await dues(client, dispatcher, west)
    assert (seen["department"]["code"], seen["slaPolicy"]) == ("police-west", "complaint_15wd")
    fifteen = load_sla_policies()["complaint_15wd"]
    assert moment(seen["resolutionDueAt"]) == resolution_due(fifteen, MONDAY, working_calendar())
    seen = await dues(client, dispatcher, east)
    assert (seen["department"]["code"], seen["slaPolicy"]) == ("police-east", "hotline_5wd")
    # Priority variants come second to the region's: marked URGENT in triage, a case given to the West
    # District runs on 15 days, one given to the East District on the urgent policy.
    # (Two hotline categories, so the second report does not join the first one's case.)
    given = (
        ("noise.neighbour", "police-west", "complaint_15wd"),
        ("noise.construction", "police-east", "urgent_24h"),
    )
    for category, department, expected in given:
        unrouted = (await submit_ok(client, citizen, report_input(category, OCEAN)))["case"]["id"]
        await set_priority(client, dispatcher, unrouted, "URGENT")
        await route(client, dispatcher, unrouted, department)
        assert (await dues(client, dispatcher, unrouted))["slaPolicy"] == expected
