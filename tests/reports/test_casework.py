"""Working a case over HTTP: the lifecycle by several people, version conflicts, the dispatchers'
tools, residents' feedback, and an event log that replays to the case's state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from strawberry.relay import to_base64 as relay_id

from kernel import clock
from reports.lifecycle import fold
from reports.models import Case, CaseEvent, CaseFeedback, Report
from reports.store import working_calendar
from server.settings import Settings
from tests.conftest import IS_POSTGRES, make_settings
from tests.graphql_client import gql_data
from tests.reports.helpers import WEST, db_id, demo_sign_in, new_photo, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # These tests move the clock by days; tokens must outlive that.
    return make_settings(media_root=tmp_path / "media", access_token_seconds=90 * 86400)


SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)

CASE_FIELDS = """id reference status version priority reworkCount responseDueAt resolutionDueAt resolutionNote
  allowedActions department { code } reporterCount reportCount mergedInto { id } closedAt"""
TRANSITION = f"""
mutation($input: CaseTransitionInput!) {{
  caseTransition(input: $input) {{ case {{ {CASE_FIELDS} }} userErrors {{ code field message }} }}
}}"""
ROUTE = f"""
mutation($input: CaseRouteInput!) {{
  caseRoute(input: $input) {{ case {{ {CASE_FIELDS} }} userErrors {{ code field message }} }}
}}"""
MERGE = f"""
mutation($input: CaseMergeInput!) {{
  caseMerge(input: $input) {{ case {{ {CASE_FIELDS} }} target {{ {CASE_FIELDS} }} userErrors {{ code field message }} }}
}}"""
RATE = """
mutation($input: CaseRateInput!) {
  caseRate(input: $input) { case { id feedback { rating comment } } userErrors { code field message } }
}"""
CASE = f"""
query($id: ID!) {{ node(id: $id) {{ ... on Case {{ {CASE_FIELDS}
  timeline {{ kind fromStatus toStatus at }} events {{ kind note actorId }}
  resolutionPhotos {{ id }} reports {{ id }} feedback {{ rating comment }} }} }} }}"""


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment.astimezone(UTC))


async def step(
    client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: Any
) -> dict[str, Any]:
    data = await gql_data(
        client, TRANSITION, {"input": {"caseId": case_id, "action": action, **extra}}, token=token
    )
    return data["caseTransition"]


async def ok(
    client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: Any
) -> dict[str, Any]:
    result = await step(client, token, case_id, action, **extra)
    assert result["userErrors"] == [], result["userErrors"]
    return result["case"]


async def refused(client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: Any) -> dict:
    result = await step(client, token, case_id, action, **extra)
    assert result["case"] is None and len(result["userErrors"]) >= 1, result
    return result["userErrors"][0]


async def my_id(client: httpx.AsyncClient, token: str) -> int:
    return db_id((await gql_data(client, "{ me { id } }", token=token))["me"]["id"])


async def open_case(
    client: httpx.AsyncClient, category: str = "noise.industrial", token: str | None = None
) -> tuple[str, str]:
    """A new case in the West District, submitted by a resident; returns (resident token, case id)."""
    if token is None:
        token, _ = await resident(client)
    result = await submit_ok(client, token, report_input(category, WEST, description="Factory hum at night"))
    return token, result["case"]["id"]


async def replayed(case_id: str) -> tuple[str, int]:
    events = await CaseEvent.filter(case_id=db_id(case_id)).order_by("id")
    status, version = fold(e for e in events if e.is_transition)
    return status.value, version


async def test_done_when_three_people_take_a_case_from_submission_to_closure(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    dispatcher = await demo_sign_in(client, "dispatcher")

    seen = (await gql_data(client, CASE, {"id": case_id}, token=staff))["node"]
    assert seen["department"]["code"] == "eco" and seen["status"] == "ROUTED"
    assert seen["responseDueAt"] and seen["resolutionDueAt"]  # deadlines visible to staff...
    mine = (await gql_data(client, CASE, {"id": case_id}, token=citizen))["node"]
    assert mine["resolutionDueAt"] == seen["resolutionDueAt"]  # ...and to the resident
    assert seen["allowedActions"] == ["ACCEPT", "RETURN"]

    at(MONDAY + timedelta(hours=1))
    case = await ok(client, staff, case_id, "ACCEPT", expectedVersion=seen["version"])
    case = await ok(client, staff, case_id, "START", expectedVersion=case["version"])
    after = await new_photo(await my_id(client, staff))
    at(MONDAY + timedelta(days=1))
    case = await ok(
        client,
        staff,
        case_id,
        "RESOLVE",
        note="Silencer fitted",
        photoIds=[after],
        expectedVersion=case["version"],
    )
    assert case["status"] == "RESOLVED" and case["resolutionNote"] == "Silencer fitted"
    # The category asks for an independent check (核查) before the resident is asked.
    assert (await refused(client, citizen, case_id, "CONFIRM"))["code"] == "CONFLICT"
    check = await new_photo(await my_id(client, dispatcher))
    case = await ok(client, dispatcher, case_id, "VERIFY_PASS", photoIds=[check])
    case = await ok(client, citizen, case_id, "CONFIRM")
    assert case["status"] == "CLOSED" and case["closedAt"]
    rated = (
        await gql_data(
            client, RATE, {"input": {"caseId": case_id, "rating": 5, "comment": "quiet now"}}, token=citizen
        )
    )["caseRate"]
    assert rated["userErrors"] == [] and rated["case"]["feedback"] == [{"rating": 5, "comment": "quiet now"}]

    final = (await gql_data(client, CASE, {"id": case_id}, token=dispatcher))["node"]
    kinds = [e["kind"] for e in final["timeline"]]
    assert kinds == ["submit", "route", "accept", "start", "resolve", "verify_pass", "confirm", "rated"]
    actors = {e["kind"]: e["actorId"] for e in final["events"]}
    assert len({actors["submit"], actors["accept"], actors["verify_pass"]}) == 3
    assert actors["confirm"] == actors["submit"]
    assert len(final["resolutionPhotos"]) == 1
    assert await replayed(case_id) == ("CLOSED", final["version"])


async def test_wrong_state_wrong_department_and_stale_version(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    other = await demo_sign_in(client, "police.west")
    error = await refused(client, staff, case_id, "START")
    assert error["code"] == "CONFLICT" and "ROUTED" in error["message"]
    assert (await refused(client, other, case_id, "ACCEPT"))["code"] == "NOT_FOUND"
    stale = await refused(client, staff, case_id, "ACCEPT", expectedVersion=1)
    assert (stale["code"], stale["field"]) == ("CONFLICT", ["input", "expectedVersion"])
    assert "ROUTED (version 2)" in stale["message"]
    assert await Case.get(id=db_id(case_id)).values_list("status", "version") == ("ROUTED", 2)


async def test_a_retried_step_gets_the_first_result_and_records_nothing_twice(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    first = await ok(client, staff, case_id, "ACCEPT", expectedVersion=2)
    again = await ok(client, staff, case_id, "ACCEPT", expectedVersion=2)  # the answer was lost
    assert first == again and first["version"] == 3
    assert await CaseEvent.filter(case_id=db_id(case_id), kind="accept").count() == 1
    # Without the version it cannot be told from a second accept: that is refused.
    assert (await refused(client, staff, case_id, "ACCEPT"))["code"] == "CONFLICT"
    # Someone else's identical step is not a retry of yours.
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert (await refused(client, dispatcher, case_id, "ACCEPT", expectedVersion=2))["code"] == "FORBIDDEN"


async def test_two_resolves_at_once_one_wins(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.neighbour")  # no after-photos needed
    staff = await demo_sign_in(client, "police.west")
    case = await ok(client, staff, case_id, "ACCEPT")
    case = await ok(client, staff, case_id, "START")
    results = await asyncio.gather(
        *(
            step(client, staff, case_id, "RESOLVE", note=f"done {i}", expectedVersion=case["version"])
            for i in range(2)
        )
    )
    winners = [r for r in results if r["case"]]
    losers = [r for r in results if r["userErrors"]]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["userErrors"][0]["code"] == "CONFLICT"
    assert await CaseEvent.filter(case_id=db_id(case_id), kind="resolve").count() == 1
    assert await replayed(case_id) == ("RESOLVED", case["version"] + 1)


async def test_missing_reasons_and_after_photos_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    error = await refused(client, staff, case_id, "RETURN", reason="  ")
    assert (error["code"], error["field"]) == ("INVALID", ["input", "reason"])
    await ok(client, staff, case_id, "ACCEPT")
    await ok(client, staff, case_id, "START")
    result = await step(client, staff, case_id, "RESOLVE")
    fields = {tuple(e["field"]) for e in result["userErrors"]}
    assert fields == {("input", "note"), ("input", "photoIds")}
    # Someone else's photo is not an after-photo of yours.
    citizen_photo = await new_photo((await Report.get(case_id=db_id(case_id))).reporter_id)
    error = await refused(client, staff, case_id, "RESOLVE", note="done", photoIds=[citizen_photo])
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["input", "photoIds", "0"])
    assert await replayed(case_id) == ("IN_PROGRESS", 4)


async def test_return_goes_to_triage_then_reroute_pauses_the_resolution_clock(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    dispatcher = await demo_sign_in(client, "dispatcher")
    before = (await gql_data(client, CASE, {"id": case_id}, token=staff))["node"]
    case = await ok(client, staff, case_id, "RETURN", reason="Industrial noise inside the park is the park's")
    assert case["status"] == "RETURNED" and case["department"] is None
    # The department handed it back: it no longer sees the case.
    assert (await gql_data(client, CASE, {"id": case_id}, token=staff))["node"] is None
    at(MONDAY + timedelta(days=2))  # two working days in triage do not count against the department
    routed = (
        await gql_data(
            client,
            ROUTE,
            {"input": {"caseId": case_id, "departmentCode": "eco", "note": "yours"}},
            token=dispatcher,
        )
    )["caseRoute"]
    assert routed["userErrors"] == []
    case = routed["case"]
    assert case["status"] == "ROUTED" and case["department"]["code"] == "eco"
    old_due = datetime.fromisoformat(before["resolutionDueAt"])
    new_due = datetime.fromisoformat(case["resolutionDueAt"])
    # Working days count from the day after dispatch, so of the pause (Monday 10:00 to Wednesday 10:00)
    # Tuesday (7.5 h) and Wednesday 9:00-10:00 stood still: the due time moves by 8.5 working hours.
    assert working_calendar().working_time_between(old_due, new_due) == timedelta(hours=8.5)
    assert datetime.fromisoformat(case["responseDueAt"]) > datetime.fromisoformat(before["responseDueAt"])
    row = await Case.get(id=db_id(case_id))
    assert len(row.sla_pauses) == 1
    assert await replayed(case_id) == ("ROUTED", 4)


async def test_dispute_reopens_for_rework(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    for action in ("ACCEPT", "START"):
        await ok(client, staff, case_id, action)
    await ok(client, staff, case_id, "RESOLVE", note="Spoke to the driver")
    assert (await refused(client, citizen, case_id, "DISPUTE"))["field"] == ["input", "reason"]
    case = await ok(client, citizen, case_id, "DISPUTE", reason="Still revving every night")
    assert (
        case["status"] == "REOPENED"
        and case["reworkCount"] == 1
        and case["department"]["code"] == "police-west"
    )
    assert case["allowedActions"] == []  # the resident waits; the department acts
    case = await ok(client, staff, case_id, "START")
    assert case["status"] == "IN_PROGRESS"
    assert await replayed(case_id) == ("IN_PROGRESS", case["version"])


async def test_merge_counts_reporters_once_and_refuses_cycles(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    token, first = await open_case(client, "noise.neighbour")
    _, second = await open_case(client, "noise.industrial")
    # The same resident also reported the second nuisance: it was grouped into the second case.
    await submit_ok(client, token, report_input("noise.industrial", WEST))
    dispatcher = await demo_sign_in(client, "dispatcher")

    async def merge(case_id: str, into: str) -> dict[str, Any]:
        data = await gql_data(
            client, MERGE, {"input": {"caseId": case_id, "intoCase": into}}, token=dispatcher
        )
        return data["caseMerge"]

    assert (await merge(first, first))["userErrors"][0]["code"] == "INVALID"
    second_row = await Case.get(id=db_id(second))
    assert second_row.reporter_count == 2
    merged = await merge(first, second)
    assert merged["userErrors"] == []
    assert merged["case"]["status"] == "MERGED" and merged["case"]["mergedInto"]["id"] == second
    assert merged["target"]["reportCount"] == 3 and merged["target"]["reporterCount"] == 2
    back = await merge(second, first)
    assert back["userErrors"][0]["code"] == "CONFLICT"  # the target is merged: no cycle
    staff = await demo_sign_in(client, "eco.staff")
    by_staff = await gql_data(client, MERGE, {"input": {"caseId": second, "intoCase": first}}, token=staff)
    assert by_staff["caseMerge"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert await replayed(first) == ("MERGED", 3)


async def test_rating_only_by_reporters_of_resolved_cases(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    stranger, _ = await resident(client)
    staff = await demo_sign_in(client, "police.west")

    async def rate(token: str, rating: int) -> list[dict[str, Any]]:
        data = await gql_data(client, RATE, {"input": {"caseId": case_id, "rating": rating}}, token=token)
        return data["caseRate"]["userErrors"]

    assert (await rate(citizen, 4))[0]["code"] == "CONFLICT"  # not resolved yet
    assert (await rate(stranger, 4))[0]["code"] == "NOT_FOUND"  # not theirs: not even its existence
    for action in ("ACCEPT", "START"):
        await ok(client, staff, case_id, action)
    await ok(client, staff, case_id, "RESOLVE", note="Fined")
    assert (await rate(staff, 5))[0]["code"] == "FORBIDDEN"
    assert (await rate(citizen, 6))[0]["field"] == ["input", "rating"]
    assert await rate(citizen, 4) == [] and await rate(citizen, 4) == []  # a retry changes nothing
    assert await rate(citizen, 2) == []
    rows = await CaseFeedback.filter(case_id=db_id(case_id)).values_list("rating")
    assert rows == [(2,)]
    assert await CaseEvent.filter(case_id=db_id(case_id), kind="rated").count() == 2


async def test_the_event_log_is_append_only_in_the_database(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    event = await CaseEvent.filter(case_id=db_id(case_id)).first()
    assert event is not None
    with pytest.raises(Exception, match="append-only"):
        await CaseEvent.filter(id=event.id).update(note="rewritten")
    if IS_POSTGRES:  # SQLite tests empty tables with DELETE, so only PostgreSQL guards deletes
        with pytest.raises(Exception, match="append-only"):
            await CaseEvent.filter(id=event.id).delete()
    assert (await CaseEvent.get(id=event.id)).note == event.note


@pytest.mark.skipif(not IS_POSTGRES, reason="pg_terminate_backend is PostgreSQL's")
async def test_connection_killed_mid_transition_leaves_nothing_and_is_retryable(
    client: httpx.AsyncClient,
) -> None:
    import asyncpg

    from tests.conftest import DATABASE_URL

    at(MONDAY)
    _, case_id = await open_case(client)
    staff = await demo_sign_in(client, "eco.staff")
    holder = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1))
    try:
        # Hold the case row so the transition stops inside its transaction, then kill that backend.
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT id FROM cases WHERE id = $1 FOR UPDATE", db_id(case_id))
        pending = asyncio.create_task(step(client, staff, case_id, "ACCEPT"))
        for _ in range(100):
            pids = await holder.fetch(
                "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if pids:
                break
            await asyncio.sleep(0.05)
        assert pids, "the transition never reached the row lock"
        await holder.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
        await lock.rollback()
        result = await pending
    finally:
        await holder.close()
    assert result["case"] is None and result["userErrors"][0]["code"] == "UNAVAILABLE"
    assert await Case.get(id=db_id(case_id)).values_list("status", "version") == ("ROUTED", 2)
    assert not await CaseEvent.filter(case_id=db_id(case_id), kind="accept").exists()
    # The client retries and succeeds.
    assert (await ok(client, staff, case_id, "ACCEPT"))["status"] == "ACCEPTED"


SPLIT = f"""
mutation($input: ReportSplitInput!) {{
  reportSplit(input: $input) {{ case {{ {CASE_FIELDS} }} newCase {{ {CASE_FIELDS} }} userErrors {{ code field message }} }}
}}"""
RECATEGORIZE = f"""
mutation($input: CaseCategoryChangeInput!) {{
  caseCategoryChange(input: $input) {{ case {{ {CASE_FIELDS} category {{ code }} }} userErrors {{ code field message }} }}
}}"""
PRIORITY = f"""
mutation($input: CasePrioritySetInput!) {{
  casePrioritySet(input: $input) {{ case {{ {CASE_FIELDS} }} userErrors {{ code field message }} }}
}}"""


async def test_triage_route_makes_the_case_public_and_reject_needs_a_reason(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    token, _ = await resident(client)
    outside = (25.0, 130.0)  # no jurisdiction covers it: triage
    payload = report_input("noise.neighbour", outside)
    case = (await submit_ok(client, token, payload))["case"]
    assert case["status"] == "TRIAGE" and case["resolutionDueAt"] is None
    dispatcher = await demo_sign_in(client, "dispatcher")
    routed = await gql_data(
        client, ROUTE, {"input": {"caseId": case["id"], "departmentCode": "police-west"}}, token=dispatcher
    )
    case = routed["caseRoute"]["case"]
    assert case["status"] == "ROUTED" and case["resolutionDueAt"] and case["responseDueAt"]
    row = await Case.get(id=db_id(case["id"]))
    assert row.public and row.dispatched_at == clock.now()
    unknown = await gql_data(
        client, ROUTE, {"input": {"caseId": case["id"], "departmentCode": "nope"}}, token=dispatcher
    )
    assert unknown["caseRoute"]["userErrors"][0]["field"] == ["input", "departmentCode"]

    other = (await submit_ok(client, token, report_input("noise.vehicle", outside)))["case"]
    error = await refused(client, dispatcher, other["id"], "REJECT")
    assert (error["code"], error["field"]) == ("INVALID", ["input", "reason"])
    rejected = await ok(client, dispatcher, other["id"], "REJECT", reason="Test submission")
    assert rejected["status"] == "REJECTED" and not (await Case.get(id=db_id(other["id"]))).public


async def test_split_a_wrongly_grouped_report_into_its_own_case(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client)
    second_token, _ = await resident(client)
    joined = await submit_ok(client, second_token, report_input("noise.industrial", WEST))
    assert joined["case"]["id"] == case_id and joined["case"]["reportCount"] == 2
    dispatcher = await demo_sign_in(client, "dispatcher")
    staff = await demo_sign_in(client, "eco.staff")
    split = {"input": {"reportId": joined["report"]["id"], "note": "another factory"}}
    assert (await gql_data(client, SPLIT, split, token=staff))["reportSplit"]["userErrors"][0][
        "code"
    ] == "FORBIDDEN"
    result = (await gql_data(client, SPLIT, split, token=dispatcher))["reportSplit"]
    assert result["userErrors"] == []
    assert result["case"]["reportCount"] == 1 and result["case"]["reporterCount"] == 1
    assert result["newCase"]["status"] == "ROUTED" and result["newCase"]["department"]["code"] == "eco"
    assert (await Report.get(id=db_id(joined["report"]["id"]))).case_id == db_id(result["newCase"]["id"])
    # The first case keeps its only report: nothing left to split.
    first_report = await Report.filter(case_id=db_id(case_id)).first()
    assert first_report is not None
    again = {"input": {"reportId": relay_id("Report", first_report.id)}}
    assert (await gql_data(client, SPLIT, again, token=dispatcher))["reportSplit"]["userErrors"][0][
        "code"
    ] == ("CONFLICT")


async def test_category_change_reroutes_and_priority_is_recorded(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.neighbour")
    dispatcher = await demo_sign_in(client, "dispatcher")
    changed = await gql_data(
        client,
        RECATEGORIZE,
        {"input": {"caseId": case_id, "categoryCode": "noise.industrial"}},
        token=dispatcher,
    )
    case = changed["caseCategoryChange"]["case"]
    assert case["category"]["code"] == "noise.industrial" and case["department"]["code"] == "eco"
    assert case["status"] == "ROUTED"
    bad = await gql_data(
        client, RECATEGORIZE, {"input": {"caseId": case_id, "categoryCode": "nope"}}, token=dispatcher
    )
    assert bad["caseCategoryChange"]["userErrors"][0]["field"] == ["input", "categoryCode"]
    raised = await gql_data(
        client, PRIORITY, {"input": {"caseId": case_id, "priority": "URGENT"}}, token=dispatcher
    )
    assert raised["casePrioritySet"]["case"]["priority"] == "URGENT"
    kinds = await CaseEvent.filter(case_id=db_id(case_id)).order_by("id").values_list("kind")
    assert [kind for (kind,) in kinds] == [
        "submit",
        "route",
        "reroute",
        "category_changed",
        "priority_changed",
    ]
    assert await replayed(case_id) == ("ROUTED", 3)
