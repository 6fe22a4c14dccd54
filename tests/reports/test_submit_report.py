"""Submitting reports over HTTP: the resident's whole flow, retries, duplicates and routing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from strawberry import relay

from kernel import clock
from kernel.geo import CoordinateSystem, haversine_m, to_wgs84
from media.models import Photo
from reports.lifecycle import fold
from reports.models import Case, CaseEvent, Report
from tests.graphql_client import gql_data
from tests.reports.helpers import (
    OCEAN,
    WEST,
    db_id,
    demo_sign_in,
    new_photo,
    public_case_id,
    report_input,
    resident,
    submit,
    submit_ok,
)

pytestmark = pytest.mark.usefixtures("demo")
SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 3, 10, 23, 30, tzinfo=SHANGHAI)  # a Tuesday
DAY = datetime(2026, 3, 10, 14, 0, tzinfo=SHANGHAI)

CASE_AS_STAFF = """
query($id: ID!) { node(id: $id) { ... on Case { reference status reporterCount routingReason routingRule
  department { code } timeline { kind toStatus } events { kind note } } } }"""


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment.astimezone(UTC))


async def test_done_when_gcj02_night_construction_noise_retried_then_joined(
    client: httpx.AsyncClient,
) -> None:
    # Tokens are signed with real time, so every account signs in before the clock moves.
    token, user_id = await resident(client)
    neighbour, _ = await resident(client)
    staff = await demo_sign_in(client, "urban.west")
    east = await demo_sign_in(client, "urban.east")
    at(NIGHT)
    photo = await new_photo(user_id)
    payload = report_input(
        "noise.construction", WEST, CoordinateSystem.GCJ02, photoIds=[photo], evidence={"recurring": True}
    )

    first = await submit_ok(client, token, payload)
    retry = await submit_ok(client, token, payload)  # the network dropped the first response

    assert retry["report"]["id"] == first["report"]["id"]
    assert retry["case"]["id"] == first["case"]["id"]
    assert await Report.all().count() == 1 and await Case.all().count() == 1
    case = first["case"]
    assert case["status"] == "ROUTED"
    assert case["department"]["code"] == "urban-west"  # night construction noise: urban management
    assert case["routingReason"] is None  # residents do not see the routing internals
    assert case["responseDueAt"] and case["resolutionDueAt"]
    assert case["reference"].startswith("2026-")
    # GCJ-02 in, WGS-84 stored, the original kept.
    original = first["report"]["originalLocation"]
    assert original["crs"] == "GCJ02"
    stored = first["report"]["location"]
    expected = to_wgs84(original["latitude"], original["longitude"], CoordinateSystem.GCJ02)
    assert haversine_m(stored["latitude"], stored["longitude"], *expected) < 0.01
    assert haversine_m(stored["latitude"], stored["longitude"], *WEST) < 0.01
    assert haversine_m(original["latitude"], original["longitude"], *WEST) > 100
    assert (await Photo.get(id=db_id(photo))).public  # routed cases are public: derivatives served

    seen = (await gql_data(client, CASE_AS_STAFF, {"id": case["id"]}, token=staff))["node"]
    assert "cn.noise.construction.night" in seen["routingReason"]
    assert "source:" in seen["routingReason"]
    assert seen["routingRule"] == "cn.noise.construction.night"
    assert [e["kind"] for e in seen["timeline"]] == ["submit", "route"]

    # A second resident 60 m away reports the same nuisance: it joins the case.
    near = (WEST[0] + 0.0005, WEST[1] + 0.0002)
    joined = await submit_ok(client, neighbour, report_input("noise.construction", near))
    assert joined["joinedExistingCase"] is True
    assert joined["case"]["id"] == case["id"]
    assert joined["case"]["reporterCount"] == 2
    seen = (await gql_data(client, CASE_AS_STAFF, {"id": case["id"]}, token=staff))["node"]
    assert seen["reporterCount"] == 2
    assert [e["kind"] for e in seen["timeline"]] == ["submit", "route", "report_added"]
    # Other departments' staff cannot open it at all.
    assert (await gql_data(client, CASE_AS_STAFF, {"id": case["id"]}, token=east))["node"] is None


async def test_daytime_construction_noise_goes_to_housing(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    result = await submit_ok(client, token, report_input("noise.construction", WEST))
    assert result["case"]["department"]["code"] == "housing"


async def test_night_rule_follows_observed_time_not_submission_time(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    payload = report_input("noise.construction", WEST, observedAt=(DAY - timedelta(hours=14)).isoformat())
    result = await submit_ok(client, token, payload)
    assert result["case"]["department"]["code"] == "urban-west"


async def test_city_override_rule_wins_over_national_default(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    staff = await demo_sign_in(client, "eco.staff")
    at(DAY)
    result = await submit_ok(
        client, token, report_input("odor.restaurant_fumes", WEST, evidence={"intensity": 3})
    )
    assert result["case"]["department"]["code"] == "eco"  # demo.odor.restaurant_fumes, not urban management
    seen = (await gql_data(client, CASE_AS_STAFF, {"id": result["case"]["id"]}, token=staff))["node"]
    assert seen["routingRule"] == "demo.odor.restaurant_fumes"
    assert "Demo City Air Pollution Regulations" in seen["routingReason"]


async def test_same_client_id_sent_twice_concurrently_creates_one_report(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    payload = report_input()
    results = await asyncio.gather(*(submit(client, token, payload) for _ in range(4)))
    assert all(r["userErrors"] == [] for r in results), results
    assert len({r["report"]["id"] for r in results}) == 1
    assert await Report.all().count() == 1 and await Case.all().count() == 1
    assert await CaseEvent.all().count() == 2


async def test_same_client_id_with_other_content_is_a_conflict(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    payload = report_input()
    await submit_ok(client, token, payload)
    result = await submit(client, token, {**payload, "description": "something else"})
    assert result["report"] is None
    assert result["userErrors"][0]["code"] == "CONFLICT"
    assert result["userErrors"][0]["field"] == ["input", "clientId"]
    assert await Report.all().count() == 1


async def test_two_residents_may_use_the_same_client_id(client: httpx.AsyncClient) -> None:
    one, _ = await resident(client)
    two, _ = await resident(client)
    at(DAY)
    payload = report_input()
    a = await submit_ok(client, one, payload)
    b = await submit_ok(client, two, payload)
    assert a["report"]["id"] != b["report"]["id"]


async def test_outside_every_jurisdiction_goes_to_triage(client: httpx.AsyncClient) -> None:
    token, user_id = await resident(client)
    at(DAY)
    photo = await new_photo(user_id)
    result = await submit_ok(client, token, report_input("water.floating_rubbish", OCEAN, photoIds=[photo]))
    case = result["case"]
    assert case["status"] == "TRIAGE"
    assert case["department"] is None
    assert case["responseDueAt"] is None  # the clocks start when a department gets it
    row = await Case.get(id=db_id(case["id"]))
    assert not row.public and row.routing_rule is None
    assert "outside every jurisdiction" in row.routing_reason
    assert not (await Photo.get(id=db_id(photo))).public  # triage cases stay off the map


async def test_the_event_log_folds_to_the_case_status(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    for point in (WEST, OCEAN):
        result = await submit_ok(client, token, report_input("noise.construction", point))
        case = await Case.get(id=db_id(result["case"]["id"]))
        events = [e for e in await CaseEvent.filter(case_id=case.id).order_by("id") if e.is_transition]
        assert fold(events) == (case.status, case.version)


async def test_duplicate_outside_radius_window_or_category_opens_a_new_case(
    client: httpx.AsyncClient,
) -> None:
    one, _ = await resident(client)
    two, _ = await resident(client)
    at(DAY)
    first = await submit_ok(client, one, report_input("noise.construction", WEST))
    far = (WEST[0] + 0.01, WEST[1])  # about 1.1 km north
    assert (await submit_ok(client, two, report_input("noise.construction", far)))["case"]["id"] != first[
        "case"
    ]["id"]
    other = await submit_ok(client, two, report_input("noise.commercial", WEST))
    assert other["case"]["id"] != first["case"]["id"]
    at(DAY + timedelta(hours=25))  # noise groups within 24 hours of the case's last report
    later = await submit_ok(client, two, report_input("noise.construction", WEST))
    assert later["case"]["id"] != first["case"]["id"]
    assert later["joinedExistingCase"] is False


async def test_same_resident_twice_counts_once(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    at(DAY)
    first = await submit_ok(client, token, report_input())
    second = await submit_ok(client, token, report_input())
    assert second["case"]["id"] == first["case"]["id"]
    assert second["case"]["reporterCount"] == 1
    assert second["case"]["reportCount"] == 2


async def test_me_too_joins_the_chosen_case(client: httpx.AsyncClient) -> None:
    one, _ = await resident(client)
    two, _ = await resident(client)
    at(DAY)
    first = await submit_ok(client, one, report_input("noise.construction", WEST))
    joined = await submit_ok(
        client, two, report_input("noise.construction", WEST, joinCase=public_case_id(first["case"]["id"]))
    )
    assert joined["joinedExistingCase"] is True
    assert joined["case"]["reporterCount"] == 2
    event = await CaseEvent.filter(kind="report_added").first()
    assert event is not None and event.data["me_too"] is True

    far = (WEST[0] + 0.02, WEST[1])
    too_far = await submit(
        client, two, report_input("noise.construction", far, joinCase=public_case_id(first["case"]["id"]))
    )
    assert too_far["userErrors"][0]["field"] == ["input", "joinCase"]
    wrong_category = await submit(
        client, two, report_input("noise.commercial", WEST, joinCase=public_case_id(first["case"]["id"]))
    )
    assert wrong_category["userErrors"][0]["code"] == "INVALID"
    missing = await submit(
        client, two, report_input(joinCase=public_case_id(relay.to_base64("Case", 999_999)))
    )
    assert missing["userErrors"][0]["field"] == ["input", "joinCase"]


async def test_me_too_cannot_join_a_private_triage_case(client: httpx.AsyncClient) -> None:
    one, _ = await resident(client)
    two, _ = await resident(client)
    at(DAY)
    triage = await submit_ok(client, one, report_input("water.floating_rubbish", OCEAN))
    result = await submit(
        client,
        two,
        report_input("water.floating_rubbish", OCEAN, joinCase=public_case_id(triage["case"]["id"])),
    )
    assert result["userErrors"][0]["code"] == "NOT_FOUND"
    assert await Report.all().count() == 1


async def test_rate_limit_per_identity_counts_in_the_database(client: httpx.AsyncClient, settings) -> None:
    from server.app import create_app
    from server.settings import Limits

    limited = create_app(
        type(settings)(
            **{
                **settings.__dict__,
                "limits": Limits(requests_per_minute=100_000, report_submissions_per_hour=2),
            }
        ),
        init_db=False,
    )
    transport = httpx.ASGITransport(app=limited, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        token, _ = await resident(c)
        other, _ = await resident(c)
        at(DAY)
        first = report_input()
        await submit_ok(c, token, first)
        await submit_ok(c, token, report_input())
        refused = await submit(c, token, report_input())
        assert refused["userErrors"][0]["code"] == "RATE_LIMITED"
        assert (await submit_ok(c, token, first))["report"]["clientId"] == first[
            "clientId"
        ]  # a retry still answers
        await submit_ok(c, other, report_input())
        at(DAY + timedelta(hours=1, minutes=1))
        await submit_ok(c, token, report_input())
    assert await Report.all().count() == 4


async def test_anonymous_caller_cannot_submit(client: httpx.AsyncClient) -> None:
    body = await submit(client, None, report_input())  # type: ignore[arg-type]
    assert body["userErrors"][0]["code"] == "UNAUTHENTICATED"
