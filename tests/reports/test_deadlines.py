"""Deadlines at work: reminders and escalations once per due time, the quiet-period close, extension
requests and decisions over HTTP, and the escalation job run by two processes at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel import clock
from reports.deadlines import close_quiet_cases, escalate_due_cases
from reports.models import Case, CaseEvent
from server.app import create_app
from server.settings import Settings
from tests.conftest import DATABASE_URL, make_settings
from tests.graphql_client import gql_data
from tests.reports.helpers import db_id, demo_sign_in, new_photo, working_cases
from tests.reports.test_casework import MONDAY, ROUTE, at, my_id, ok, open_case

pytestmark = pytest.mark.usefixtures("demo")

ROOT = Path(__file__).resolve().parents[2]
QUIET = timedelta(days=7)

DEADLINE = """query($id: ID!) { node(id: $id) { ... on Case {
  status priority deadlineState responseDueAt resolutionDueAt
  extensions { id amount reason status decisionNote } events { kind data } } } }"""
REQUEST = """mutation($input: CaseExtensionRequestInput!) { caseExtensionRequest(input: $input) {
  extension { id amount reason status } case { id resolutionDueAt } userErrors { code field message } } }"""
DECIDE = """mutation($input: CaseExtensionDecideInput!) { caseExtensionDecide(input: $input) {
  extension { id status decisionNote } case { id resolutionDueAt deadlineState } userErrors { code field message } } }"""
PRIORITY = """mutation($input: CasePrioritySetInput!) { casePrioritySet(input: $input) {
  case { priority } userErrors { code message } } }"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The clock moves by weeks; tokens must outlive that.
    return make_settings(media_root=tmp_path / "media", access_token_seconds=90 * 86400)


async def seen(client: httpx.AsyncClient, token: str, case_id: str) -> dict[str, Any]:
    return (await gql_data(client, DEADLINE, {"id": case_id}, token=token))["node"]


async def kinds(case_id: str) -> Counter[str]:
    return Counter(kind for (kind,) in await CaseEvent.filter(case_id=db_id(case_id)).values_list("kind"))


async def sweep(moment: datetime) -> tuple[int, int]:
    at(moment)
    result = await escalate_due_cases(clock.now())
    return result.reminded, result.escalated


# Monday 10:00 in Shanghai; the hotline policy gives 1 working day to respond: due Tuesday 18:00, and
# 80 % of its 14 working hours are used on Tuesday at 15:12.
TUESDAY_AFTERNOON = MONDAY + timedelta(days=1, hours=6)
TUESDAY_EVENING = MONDAY + timedelta(days=1, hours=9)


async def test_approaching_then_overdue_reminds_once_then_escalates_once_and_raises_priority(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    case = await seen(client, staff, case_id)
    assert (case["status"], case["deadlineState"], case["priority"]) == ("ROUTED", "ON_TIME", "NORMAL")

    assert await sweep(MONDAY + timedelta(hours=2)) == (0, 0)
    assert await sweep(TUESDAY_AFTERNOON) == (1, 0)
    assert (await seen(client, citizen, case_id))["deadlineState"] == "APPROACHING"  # residents see it too
    assert await sweep(TUESDAY_AFTERNOON + timedelta(minutes=30)) == (0, 0)

    assert await sweep(TUESDAY_EVENING) == (0, 1)
    case = await seen(client, staff, case_id)
    assert (case["deadlineState"], case["priority"]) == ("OVERDUE", "HIGH")
    assert await sweep(TUESDAY_EVENING + timedelta(days=1)) == (0, 0)
    counted = await kinds(case_id)
    assert (counted["reminded"], counted["escalated"]) == (1, 1)
    escalation = next(e for e in case["events"] if e["kind"] == "escalated")
    assert escalation["data"]["deadline"] == "response" and (
        escalation["data"]["old"],
        escalation["data"]["new"],
    ) == (2, 3)
    # The resident sees the state but not the staff's extension requests.
    assert (await seen(client, citizen, case_id))["extensions"] == []


async def test_a_reroute_gives_a_fresh_due_time_reminded_and_escalated_again(
    client: httpx.AsyncClient,
) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.neighbour")
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert await sweep(TUESDAY_EVENING) == (0, 1)  # overdue without a reminder: one escalation only

    # Re-routed on Wednesday 10:00: the new department has until Thursday 18:00 to respond.
    at(MONDAY + timedelta(days=2))
    moved = await gql_data(
        client, ROUTE, {"input": {"caseId": case_id, "departmentCode": "urban-west"}}, token=dispatcher
    )
    assert moved["caseRoute"]["userErrors"] == []
    assert (await seen(client, dispatcher, case_id))["deadlineState"] == "ON_TIME"
    assert await sweep(MONDAY + timedelta(days=3, hours=6)) == (1, 0)
    assert await sweep(MONDAY + timedelta(days=3, hours=9)) == (0, 1)
    counted = await kinds(case_id)
    assert (counted["reminded"], counted["escalated"]) == (1, 2)
    assert (await seen(client, dispatcher, case_id))["priority"] == "URGENT"  # NORMAL -> HIGH -> URGENT


async def test_priority_stays_urgent_at_most(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.neighbour")
    dispatcher = await demo_sign_in(client, "dispatcher")
    await gql_data(client, PRIORITY, {"input": {"caseId": case_id, "priority": "URGENT"}}, token=dispatcher)
    assert await sweep(TUESDAY_EVENING) == (0, 1)
    assert (await seen(client, dispatcher, case_id))["priority"] == "URGENT"


async def test_no_deadline_state_outside_the_working_statuses(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    await ok(client, staff, case_id, "ACCEPT")
    await ok(client, staff, case_id, "START")
    assert (await seen(client, staff, case_id))["deadlineState"] == "ON_TIME"  # now the resolution deadline
    await ok(client, staff, case_id, "RESOLVE", note="Talked to the neighbour")
    assert (await seen(client, citizen, case_id))["deadlineState"] is None
    assert await sweep(MONDAY + timedelta(days=30)) == (0, 0)


async def test_quiet_resolved_cases_close_after_the_period_not_before(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    await ok(client, staff, case_id, "ACCEPT")
    await ok(client, staff, case_id, "START")
    await ok(client, staff, case_id, "RESOLVE", note="Talked to the neighbour")

    assert await close_quiet_cases(MONDAY + QUIET - timedelta(minutes=1), QUIET) == 0
    at(MONDAY + QUIET + timedelta(minutes=1))
    assert await close_quiet_cases(clock.now(), QUIET) == 1
    assert await close_quiet_cases(clock.now(), QUIET) == 0
    case = await Case.get(id=db_id(case_id))
    assert case.status == "CLOSED" and case.closed_at is not None
    closing = await CaseEvent.get(case_id=case.id, kind="auto_close")
    assert closing.actor_id is None and closing.to_status == "CLOSED"


async def test_a_case_waiting_for_its_check_does_not_close_quietly(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.industrial")  # asks for verification (核查)
    staff = await demo_sign_in(client, "eco.staff")
    dispatcher = await demo_sign_in(client, "dispatcher")
    await ok(client, staff, case_id, "ACCEPT")
    await ok(client, staff, case_id, "START")
    after = await new_photo(await my_id(client, staff))
    await ok(client, staff, case_id, "RESOLVE", note="Silencer fitted", photoIds=[after])

    at(MONDAY + 2 * QUIET)
    assert await close_quiet_cases(clock.now(), QUIET) == 0
    check = await new_photo(await my_id(client, dispatcher))
    await ok(client, dispatcher, case_id, "VERIFY_PASS", photoIds=[check])
    # The quiet period counts from the check, when the resident is asked.
    assert await close_quiet_cases(MONDAY + 3 * QUIET - timedelta(hours=1), QUIET) == 0
    at(MONDAY + 3 * QUIET)
    assert await close_quiet_cases(clock.now(), QUIET) == 1
    assert (await Case.get(id=db_id(case_id))).status == "CLOSED"


async def _request(client: httpx.AsyncClient, token: str, case_id: str, **given: Any) -> dict[str, Any]:
    values = {"caseId": case_id, "amount": 2, "reason": "Waiting for the noise measurement", **given}
    return (await gql_data(client, REQUEST, {"input": values}, token=token))["caseExtensionRequest"]


async def _decide(client: httpx.AsyncClient, token: str, extension_id: str, **given: Any) -> dict[str, Any]:
    values = {"extensionId": extension_id, "approve": True, **given}
    return (await gql_data(client, DECIDE, {"input": values}, token=token))["caseExtensionDecide"]


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_extension_request_and_approval_move_the_resolution_deadline(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert _codes(await _request(client, staff, case_id)) == ["CONFLICT"]  # accept it first
    await ok(client, staff, case_id, "ACCEPT")
    before = (await seen(client, staff, case_id))["resolutionDueAt"]

    asked = await _request(client, staff, case_id)
    assert asked["userErrors"] == [] and asked["extension"]["status"] == "PENDING"
    again = await _request(client, staff, case_id)  # a retry returns the same request
    assert again["extension"]["id"] == asked["extension"]["id"]
    assert _codes(await _request(client, staff, case_id, amount=3)) == ["CONFLICT"]  # one pending at a time
    assert _codes(await _decide(client, staff, asked["extension"]["id"])) == ["FORBIDDEN"]

    decided = await _decide(client, dispatcher, asked["extension"]["id"], note="Granted")
    assert decided["userErrors"] == [] and decided["extension"]["status"] == "APPROVED"
    # Five working days from Monday end on the next Monday 18:00; two more end on Wednesday 18:00.
    moved = datetime.fromisoformat(decided["case"]["resolutionDueAt"])
    assert moved - datetime.fromisoformat(before) == timedelta(days=2)
    retried = await _decide(client, dispatcher, asked["extension"]["id"], note="Granted")
    assert (
        retried["userErrors"] == []
        and retried["case"]["resolutionDueAt"] == decided["case"]["resolutionDueAt"]
    )
    assert _codes(await _decide(client, dispatcher, asked["extension"]["id"], approve=False)) == ["CONFLICT"]

    declined_request = await _request(client, staff, case_id, amount=1, reason="More samples")
    declined = await _decide(
        client, dispatcher, declined_request["extension"]["id"], approve=False, note="No"
    )
    assert declined["extension"]["status"] == "DECLINED"
    assert declined["case"]["resolutionDueAt"] == decided["case"]["resolutionDueAt"]

    case = await seen(client, staff, case_id)
    assert [e["status"] for e in case["extensions"]] == ["DECLINED", "APPROVED"]
    counted = await kinds(case_id)
    assert (counted["extension_requested"], counted["extension_approved"], counted["extension_declined"]) == (
        2,
        1,
        1,
    )
    assert (await seen(client, citizen, case_id))["extensions"] == []


async def test_an_approved_extension_is_a_new_due_time_reminded_again(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    _, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    dispatcher = await demo_sign_in(client, "dispatcher")
    await ok(client, staff, case_id, "ACCEPT")
    # Due the next Monday 18:00; that morning 37.5 of its 44 working hours are used.
    next_monday = MONDAY + timedelta(days=7)
    assert await sweep(next_monday) == (1, 0)
    asked = await _request(client, staff, case_id, amount=3)
    decided = await _decide(client, dispatcher, asked["extension"]["id"])
    assert decided["case"]["deadlineState"] == "ON_TIME"  # 37.5 of 66.5 hours
    assert await sweep(next_monday + timedelta(hours=1)) == (0, 0)
    assert await sweep(next_monday + timedelta(days=3)) == (1, 0)  # Thursday, due 18:00
    assert await sweep(next_monday + timedelta(days=4)) == (0, 1)
    assert (await kinds(case_id))["reminded"] == 2


async def test_extension_requests_refused(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    citizen, case_id = await open_case(client, "noise.neighbour")
    staff = await demo_sign_in(client, "police.west")
    other = await demo_sign_in(client, "urban.west")
    await ok(client, staff, case_id, "ACCEPT")
    assert _codes(await _request(client, citizen, case_id)) == ["FORBIDDEN"]  # the reporter is not staff
    assert _codes(await _request(client, other, case_id)) == ["NOT_FOUND"]  # another department's staff
    for amount in (0, -1, 1.5):
        payload = await _request(client, staff, case_id, amount=amount)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", "amount"])]
    assert _codes(await _request(client, staff, case_id, reason="  ")) == ["INVALID"]
    not_an_extension = await _decide(client, await demo_sign_in(client, "dispatcher"), case_id)
    assert _codes(not_an_extension) == ["INVALID"]
    assert await kinds(case_id) == Counter({"submit": 1, "route": 1, "accept": 1})


async def test_a_server_process_runs_the_pass_when_deadline_sweep_seconds_is_set(tmp_path: Path) -> None:
    at(TUESDAY_EVENING)
    [case_id] = await working_cases(1, clock.now() - timedelta(hours=1))
    app = create_app(make_settings(media_root=tmp_path / "media", deadline_sweep_seconds=1), init_db=False)
    async with app.router.lifespan_context(app):
        for _ in range(100):  # the first run comes after one period
            if await CaseEvent.exists(case_id=case_id, kind="escalated"):
                break
            await asyncio.sleep(0.1)
    assert await CaseEvent.filter(case_id=case_id, kind="escalated").count() == 1


def _escalate_in_subprocess(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DATA_DIR": str(tmp_path / name),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "server", "escalate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_done_when_an_overdue_case_is_escalated_exactly_once_although_two_processes_run_the_job(
    tmp_path: Path,
) -> None:
    # The subprocesses run on the real clock: these cases are overdue now.
    count = 3000
    ids = await working_cases(count, datetime.now(UTC) - timedelta(hours=1))
    jobs = [_escalate_in_subprocess(tmp_path, name) for name in ("first", "second")]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs

    events = Counter(
        await CaseEvent.filter(case_id__in=ids, kind__in=["escalated", "reminded"]).values_list(
            "case_id", "kind"
        )
    )
    assert len(events) == count and set(events.values()) == {1}
    assert {kind for _, kind in events} == {"escalated"}
    assert set(await Case.filter(id__in=ids).values_list("priority")) == {(3,)}
    escalated = [int(out.split(" escalated")[0].split()[-1]) for out in outputs]
    assert sum(escalated) == count, outputs  # each process says what it did, together every case once
