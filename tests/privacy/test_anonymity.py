"""Anonymity that holds (issue 15, item 2): pseudonyms per case, contact through the platform, reveals
by admins with a reason, each in the access log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from strawberry import relay

from identity.models import AccessKind, AccessRecord
from tests.graphql_client import gql, gql_data
from tests.privacy.helpers import access_log, gql_with_id
from tests.reports.helpers import WEST, demo_sign_in, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

ELSEWHERE = (30.27, 120.11)  # West District too, about 1.4 km from WEST: another case

CASE = """query($id: ID!) { node(id: $id) { ... on Case { id reference
  reports { id reporter anonymous contactConsent }
  events { kind actorId actor } } } }"""
CONTACT = """mutation($input: CaseContactReporterInput!) {
  caseContactReporter(input: $input) { sent userErrors { code field message } } }"""
INBOX = "{ notifications(first: 10) { nodes { kind title body case { reference } } } }"
REVEAL = """mutation($input: ReporterRevealInput!) { reporterReveal(input: $input) {
  reporter { userId displayName phone } record { kind purpose subjectId requestId }
  userErrors { code field message } } }"""


def user_gid(user_id: int) -> str:
    return relay.to_base64("User", user_id)


async def file(client: httpx.AsyncClient, token: str, at: tuple[float, float], **flags: Any) -> dict:
    return await submit_ok(client, token, report_input("noise.neighbour", at, **flags))


@pytest.fixture
async def two_cases(client: httpx.AsyncClient) -> dict:
    """Resident A files anonymously (with consent to be contacted) on two cases of the same department;
    resident B files openly on both: A is reporter 1 of the first case and reporter 2 of the second."""
    a_token, a_id = await resident(client)
    b_token, b_id = await resident(client)
    first = await file(client, a_token, WEST, anonymous=True, contactConsent=True)
    b_first = await file(client, b_token, WEST)
    assert b_first["joinedExistingCase"] and b_first["case"]["id"] == first["case"]["id"]
    b_second = await file(client, b_token, ELSEWHERE)
    second = await file(client, a_token, ELSEWHERE, anonymous=True, contactConsent=True)
    assert second["joinedExistingCase"] and second["case"]["id"] == b_second["case"]["id"]
    assert first["case"]["id"] != second["case"]["id"]
    return {
        "a": (a_token, a_id),
        "b": (b_token, b_id),
        "cases": [first["case"]["id"], second["case"]["id"]],
        "a_reports": [first["report"]["id"], second["report"]["id"]],
        "b_reports": [b_first["report"]["id"], b_second["report"]["id"]],
        "references": [first["case"]["reference"], second["case"]["reference"]],
    }


async def test_staff_see_per_case_pseudonyms_that_do_not_link_an_anonymous_reporters_cases(client, two_cases):
    staff = await demo_sign_in(client, "police.west")
    _, a_id = two_cases["a"]
    _, b_id = two_cases["b"]
    seen = []
    for n, case_id in enumerate(two_cases["cases"]):
        case = (await gql_with_id(client, CASE, {"id": case_id}, staff, request_id=f"case-read-{n}"))["node"]
        assert case is not None
        # Nothing in what staff read names resident A: no account id anywhere in the answer.
        assert user_gid(a_id) not in json.dumps(case)
        by_report = {r["id"]: r for r in case["reports"]}
        a_report = by_report[two_cases["a_reports"][n]]
        b_report = by_report[two_cases["b_reports"][n]]
        assert a_report["anonymous"] and a_report["contactConsent"]
        a_events = [e for e in case["events"] if e["actor"] == a_report["reporter"]]
        assert a_events and all(e["actorId"] is None for e in a_events)
        # Resident B filed openly: their account shows on their events, and that look is logged.
        b_events = [e for e in case["events"] if e["actorId"] == user_gid(b_id)]
        assert b_events and {e["actor"] for e in b_events} == {b_report["reporter"]}
        seen.append((a_report["reporter"], b_report["reporter"]))
    # Stable labels within each case, different for the same resident across cases.
    assert seen == [("reporter 1", "reporter 2"), ("reporter 2", "reporter 1")]

    admin = await demo_sign_in(client, "admin")
    records = await access_log(client, admin, subject=user_gid(b_id))
    assert {(r["kind"], r["requestId"]) for r in records} == {
        ("REPORTER_IDENTITY", "case-read-0"),
        ("REPORTER_IDENTITY", "case-read-1"),
    }
    report_reads = await access_log(client, admin, kind="REPORT")
    # B's named reports were read; A's anonymous ones are not "non-anonymized reports".
    assert {r["subjectId"] for r in report_reads} == set(two_cases["b_reports"])
    assert all(r["role"] == "STAFF" and r["userId"] != user_gid(a_id) for r in report_reads)
    assert not await AccessRecord.filter(kind=AccessKind.REPORTER_IDENTITY, subject_id=a_id).exists()


async def test_a_resident_sees_their_own_report_and_no_one_elses(client, two_cases):
    a_token, _ = two_cases["a"]
    case = (await gql_data(client, CASE, {"id": two_cases["cases"][1]}, a_token))["node"]
    assert [r["id"] for r in case["reports"]] == [two_cases["a_reports"][1]]
    assert case["reports"][0]["reporter"] == "reporter 2"
    assert case["events"] == []  # the event log is the staff's


async def test_staff_reach_a_consenting_reporter_through_the_inbox_only(client, two_cases):
    staff = await demo_sign_in(client, "police.west")
    a_token, _ = two_cases["a"]
    message = "Could you tell us at what time the noise starts? Reply in the app."
    sent = await gql_data(
        client, CONTACT, {"input": {"reportId": two_cases["a_reports"][0], "message": message}}, staff
    )
    assert sent["caseContactReporter"] == {"sent": True, "userErrors": []}
    inbox = (await gql_data(client, INBOX, token=a_token))["notifications"]["nodes"]
    assert len(inbox) == 1
    note = inbox[0]
    assert note["kind"] == "case_contact" and note["body"] == message
    assert note["case"]["reference"] == two_cases["references"][0]
    assert two_cases["references"][0] in note["title"]
    # B did not consent: refused, and nothing reaches B.
    refused = await gql_data(
        client, CONTACT, {"input": {"reportId": two_cases["b_reports"][0], "message": "Hello"}}, staff
    )
    assert refused["caseContactReporter"]["sent"] is False
    assert [(e["code"], e["field"]) for e in refused["caseContactReporter"]["userErrors"]] == [
        ("FORBIDDEN", ["input", "reportId"])
    ]
    b_token, _ = two_cases["b"]
    assert (await gql_data(client, INBOX, token=b_token))["notifications"]["nodes"] == []


@pytest.mark.parametrize(
    ("who", "message", "code", "field"),
    [
        ("eco.staff", "Hello", "NOT_FOUND", ["input", "reportId"]),  # another department's case
        ("police.west", "   ", "INVALID", ["input", "message"]),
        ("police.west", "x" * 2001, "INVALID", ["input", "message"]),
    ],
)
async def test_contact_refusals(client, two_cases, who, message, code, field):
    token = await demo_sign_in(client, who)
    answer = await gql_data(
        client, CONTACT, {"input": {"reportId": two_cases["a_reports"][0], "message": message}}, token
    )
    assert [(e["code"], e["field"]) for e in answer["caseContactReporter"]["userErrors"]] == [(code, field)]
    a_token, _ = two_cases["a"]
    assert (await gql_data(client, INBOX, token=a_token))["notifications"]["nodes"] == []


async def test_a_resident_cannot_use_the_relay(client, two_cases):
    b_token, _ = two_cases["b"]
    answer = await gql_data(
        client, CONTACT, {"input": {"reportId": two_cases["a_reports"][0], "message": "hi"}}, b_token
    )
    assert answer["caseContactReporter"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_an_admin_reveals_a_reporter_only_with_a_reason_and_the_reveal_is_logged(client, two_cases):
    admin = await demo_sign_in(client, "admin")
    report_id = two_cases["a_reports"][0]
    for reason in (None, "", "   "):
        variables = {"input": {"reportId": report_id} | ({} if reason is None else {"reason": reason})}
        answer = (await gql_data(client, REVEAL, variables, admin))["reporterReveal"]
        assert answer["reporter"] is None
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["input", "reason"])]
    for who in ("police.west", "dispatcher"):
        token = await demo_sign_in(client, who)
        answer = await gql_data(client, REVEAL, {"input": {"reportId": report_id, "reason": "x"}}, token)
        assert answer["reporterReveal"]["reporter"] is None
        assert answer["reporterReveal"]["userErrors"][0]["code"] == "FORBIDDEN"
    a_token, a_id = two_cases["a"]
    answer = await gql(client, REVEAL, {"input": {"reportId": report_id, "reason": "x"}}, a_token)
    assert answer["data"]["reporterReveal"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert not await AccessRecord.filter(kind=AccessKind.REVEAL).exists()

    reason = "Court order 2026-17: the complainant is a witness"
    revealed = (
        await gql_with_id(
            client, REVEAL, {"input": {"reportId": report_id, "reason": reason}}, admin, request_id="reveal-1"
        )
    )["reporterReveal"]
    assert revealed["userErrors"] == []
    assert revealed["reporter"]["userId"] == user_gid(a_id)
    assert revealed["record"] == {
        "kind": "REVEAL",
        "purpose": reason,
        "subjectId": report_id,
        "requestId": "reveal-1",
    }
    logged = await access_log(client, admin, kind="REVEAL")
    assert [(r["purpose"], r["subjectId"], r["role"]) for r in logged] == [(reason, report_id, "ADMIN")]
    missing = relay.to_base64("Report", 999_999)
    answer = await gql_data(client, REVEAL, {"input": {"reportId": missing, "reason": "x"}}, admin)
    assert answer["reporterReveal"]["userErrors"][0]["code"] == "NOT_FOUND"
