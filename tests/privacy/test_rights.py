"""Residents' rights (issue 15, item 5): download my data, delete my account, recover it on a new phone."""

from __future__ import annotations

import json
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from strawberry import relay

from identity.models import Role, Session, User
from kernel import clock
from notifications.models import Notification
from tests.graphql_client import DEVICE_REGISTER, gql, gql_data, new_account
from tests.reports.helpers import EAST, WEST, db_id, demo_sign_in, new_photo, report_input, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

EXPORT = "{ myDataExport }"
DELETE = """mutation($confirm: Boolean!) { accountDelete(input: {confirm: $confirm}) {
  deleted userErrors { code field message } } }"""
PHONE_START = """mutation($p: String!) { phoneVerificationStart(input: {phone: $p}) {
  expiresAt userErrors { code field message } } }"""
PHONE_CONFIRM = """mutation($p: String!, $c: String!, $out: Boolean! = false) {
  phoneVerificationConfirm(input: {phone: $p, code: $c, signOutOtherDevices: $out}) {
    user { id phone } accountRecovered accessToken refreshToken userErrors { code field message } } }"""
MY_REPORTS = "{ myReports(first: 20) { nodes { id } } }"
CASE = """query($id: ID!) { node(id: $id) { ... on Case { id reporterCount reportCount
  reports { id reporter anonymous contactConsent } events { kind actorId actor } } } }"""
CONTACT = """mutation($input: CaseContactReporterInput!) {
  caseContactReporter(input: $input) { sent userErrors { code field message } } }"""
STATISTICS = """query($input: CaseStatisticsInput!) { caseStatistics(input: $input) {
  total received accepted resolved closed ratings } }"""
PHONE = "+8613800138000"


def user_gid(user_id: int) -> str:
    return relay.to_base64("User", user_id)


async def device(client: httpx.AsyncClient, key: str | None = None) -> tuple[str, int, str]:
    """A new app installation: (access token, account id, device key)."""
    key = key or secrets.token_urlsafe(32)
    data = (await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": key}}))["deviceRegister"]
    return data["accessToken"], db_id(data["user"]["id"]), key


def sent_code(caplog: pytest.LogCaptureFixture) -> str:
    messages = [r.getMessage() for r in caplog.records if r.name == "identity.otp"]
    sent = re.search(r": (\d{6}) ", messages[-1])
    assert sent is not None, messages[-1]
    return sent.group(1)


async def confirm(
    client: httpx.AsyncClient, token: str, code: str, phone: str = PHONE, out: bool = False
) -> dict[str, Any]:
    variables = {"p": phone, "c": code, "out": out}
    return (await gql_data(client, PHONE_CONFIRM, variables, token=token))["phoneVerificationConfirm"]


async def verify(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, token: str, phone: str = PHONE
) -> str:
    start = (await gql_data(client, PHONE_START, {"p": phone}, token=token))["phoneVerificationStart"]
    assert start["userErrors"] == [], start
    return sent_code(caplog)


async def refused(client: httpx.AsyncClient, query: str, token: str, variables: dict | None = None) -> str:
    """The error code of a request the server refuses outright (a token that no longer signs in)."""
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401, response.text
    return response.json()["errors"][0]["extensions"]["code"]


@pytest.fixture(autouse=True)
def otp_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="identity.otp")


# --- download my data ----------------------------------------------------------------------------


async def test_export_holds_my_reports_photos_and_timeline_and_nothing_of_another_reporter(client, caplog):
    a_token, a_id, _ = await device(client)
    b_token, b_id, _ = await device(client)
    await confirm(client, a_token, await verify(client, caplog, a_token))
    a_photo, b_photo = await new_photo(a_id), await new_photo(b_id)
    mine = await submit_ok(client, a_token, report_input("noise.neighbour", WEST, photoIds=[a_photo]))
    theirs = await submit_ok(client, b_token, report_input("noise.neighbour", WEST, photoIds=[b_photo]))
    assert theirs["case"]["id"] == mine["case"]["id"]  # the same case, two reporters

    export = (await gql_data(client, EXPORT, token=a_token))["myDataExport"]

    assert export["account"]["id"] == a_id and export["account"]["phone"] == PHONE
    assert export["notifications"]["preferences"]["language"] == "zh-CN"
    assert [r["id"] for r in export["reports"]["reports"]] == [db_id(mine["report"]["id"])]
    assert export["reports"]["reports"][0]["case"]["reference"] == mine["case"]["reference"]
    assert [p["id"] for p in export["photos"]] == [db_id(a_photo)]
    assert export["photos"][0]["display"].startswith("media/")
    (case,) = export["reports"]["cases"]
    assert case["reference"] == mine["case"]["reference"]
    kinds = [e["kind"] for e in case["timeline"]]
    assert kinds[0] == "submit" and "report_added" in kinds
    # Nothing of B: not their report, not their photo, not their account.
    # (Checked field by field: ids of different tables may be the same number.)
    assert db_id(theirs["report"]["id"]) not in [r["id"] for r in export["reports"]["reports"]]
    assert all(p["id"] != db_id(b_photo) for p in export["photos"])
    assert export["account"]["id"] != b_id and user_gid(b_id) not in json.dumps(export)


async def test_export_is_for_the_signed_in_resident_only(client):
    anonymous = await gql(client, EXPORT)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    staff = await demo_sign_in(client, "police.west")
    assert (await gql(client, EXPORT, token=staff))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # There is no way to name someone else: an id argument is not part of the query.
    token, _, _ = await device(client)
    wrong = await gql(client, '{ myDataExport(userId: "VXNlcjox") }', token=token)
    assert wrong["errors"] and not wrong.get("data")


# --- delete my account ---------------------------------------------------------------------------


async def statistics(client: httpx.AsyncClient, admin: str) -> list[dict]:
    today = clock.now().date()
    period = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2)), "groupBy": []}
    return (await gql_data(client, STATISTICS, {"input": period}, token=admin))["caseStatistics"]


async def test_deleting_an_account_clears_it_and_keeps_its_reports_anonymized_in_their_cases(client, caplog):
    a_token, a_id, a_key = await device(client)
    b_token, _, _ = await device(client)
    await confirm(client, a_token, await verify(client, caplog, a_token))
    mine = await submit_ok(client, a_token, report_input("noise.neighbour", WEST, contactConsent=True))
    await submit_ok(client, b_token, report_input("noise.neighbour", WEST))
    staff, admin = await demo_sign_in(client, "police.west"), await demo_sign_in(client, "admin")
    case_id = mine["case"]["id"]
    sent = await gql_data(
        client, CONTACT, {"input": {"reportId": mine["report"]["id"], "message": "When?"}}, staff
    )
    assert sent["caseContactReporter"]["sent"]
    assert await Notification.filter(user_id=a_id).count() == 1
    before_case = (await gql_data(client, CASE, {"id": case_id}, token=staff))["node"]
    assert user_gid(a_id) in json.dumps(before_case)  # A reported openly
    before_stats = await statistics(client, admin)

    unconfirmed = (await gql_data(client, DELETE, {"confirm": False}, token=a_token))["accountDelete"]
    assert unconfirmed["deleted"] is False and unconfirmed["userErrors"][0]["code"] == "INVALID"
    assert unconfirmed["userErrors"][0]["field"] == ["input", "confirm"]
    deleted = (await gql_data(client, DELETE, {"confirm": True}, token=a_token))["accountDelete"]
    assert deleted == {"deleted": True, "userErrors": []}

    # The case is as it was for staff, but nothing names A: no account id, a pseudonym only.
    after_case = (await gql_data(client, CASE, {"id": case_id}, token=staff))["node"]
    assert after_case["reporterCount"] == before_case["reporterCount"] == 2
    assert after_case["reportCount"] == before_case["reportCount"] == 2
    assert user_gid(a_id) not in json.dumps(after_case)
    a_report = next(r for r in after_case["reports"] if r["id"] == mine["report"]["id"])
    assert a_report["anonymous"] and not a_report["contactConsent"] and a_report["reporter"] == "reporter 1"
    assert await statistics(client, admin) == before_stats
    # Personal fields cleared, sessions ended, inbox gone.
    user = await User.get(id=a_id)
    assert (user.phone, user.phone_verified_at, user.display_name, user.device_key_hash) == (
        None,
        None,
        "",
        None,
    )
    assert not user.is_active
    assert not await Session.filter(user_id=a_id, revoked_at=None).exists()
    assert await Notification.filter(user_id=a_id).count() == 0
    # Deleting twice (or anything else with the old token) is UNAUTHENTICATED, never INTERNAL.
    assert await refused(client, DELETE, a_token, {"confirm": True}) == "UNAUTHENTICATED"
    assert await refused(client, EXPORT, a_token) == "UNAUTHENTICATED"
    # The old device key no longer opens the deleted account: it starts a new, empty one.
    fresh_token, fresh_id, _ = await device(client, a_key)
    assert fresh_id != a_id
    assert (await gql_data(client, MY_REPORTS, token=fresh_token))["myReports"]["nodes"] == []
    # The number is free again.
    assert (await confirm(client, fresh_token, await verify(client, caplog, fresh_token)))["userErrors"] == []


async def test_only_residents_delete_their_account_here(client):
    staff = await demo_sign_in(client, "police.west")
    answer = (await gql_data(client, DELETE, {"confirm": True}, token=staff))["accountDelete"]
    assert answer["deleted"] is False and answer["userErrors"][0]["code"] == "FORBIDDEN"
    anonymous = (await gql_data(client, DELETE, {"confirm": True}))["accountDelete"]
    assert anonymous["userErrors"][0]["code"] == "UNAUTHENTICATED"


# --- recover my account on a new phone -----------------------------------------------------------


async def test_a_new_phone_recovers_the_account_by_its_number_and_brings_its_reports(client, caplog):
    old_token, a_id, _ = await device(client)
    assert (await confirm(client, old_token, await verify(client, caplog, old_token)))["userErrors"] == []
    first = await submit_ok(client, old_token, report_input("noise.neighbour", WEST))
    new_token, new_id, new_key = await device(client)
    second = await submit_ok(client, new_token, report_input("noise.neighbour", EAST))

    code = await verify(client, caplog, new_token)
    wrong = await confirm(client, new_token, "000000" if code != "000000" else "111111")
    assert wrong["userErrors"][0]["code"] == "INVALID" and not wrong["accountRecovered"]
    # Without the right code nothing moved.
    mine = (await gql_data(client, MY_REPORTS, token=new_token))["myReports"]["nodes"]
    assert [r["id"] for r in mine] == [second["report"]["id"]]

    recovered = await confirm(client, new_token, code)
    assert recovered["userErrors"] == [] and recovered["accountRecovered"]
    assert recovered["user"]["id"] == user_gid(a_id)
    token = recovered["accessToken"]
    me = (await gql_data(client, "{ me { id phone } }", token=token))["me"]
    assert me == {"id": user_gid(a_id), "phone": PHONE}
    both = {r["id"] for r in (await gql_data(client, MY_REPORTS, token=token))["myReports"]["nodes"]}
    assert both == {first["report"]["id"], second["report"]["id"]}
    # The throwaway account is retired; its token ends. The old phone stays signed in (by default).
    assert await refused(client, MY_REPORTS, new_token) == "UNAUTHENTICATED"
    assert not (await User.get(id=new_id)).is_active
    assert (await gql_data(client, "{ me { id } }", token=old_token))["me"]["id"] == user_gid(a_id)
    # The new phone's key now signs in to the recovered account.
    _, again_id, _ = await device(client, new_key)
    assert again_id == a_id
    export = (await gql_data(client, EXPORT, token=token))["myDataExport"]
    assert {r["id"] for r in export["reports"]["reports"]} == {
        db_id(first["report"]["id"]),
        db_id(second["report"]["id"]),
    }


async def test_recovery_may_sign_out_the_old_phone(client, caplog):
    old_token, a_id, _ = await device(client)
    await confirm(client, old_token, await verify(client, caplog, old_token))
    new_token, _, _ = await device(client)
    recovered = await confirm(client, new_token, await verify(client, caplog, new_token), out=True)
    assert recovered["accountRecovered"] and recovered["user"]["id"] == user_gid(a_id)
    assert await refused(client, MY_REPORTS, old_token) == "UNAUTHENTICATED"
    assert (await gql_data(client, "{ me { id } }", token=recovered["accessToken"]))["me"]["id"] == user_gid(
        a_id
    )


async def test_a_number_nobody_holds_is_verified_as_before(client, caplog):
    token, user_id, _ = await device(client)
    answer = await confirm(client, token, await verify(client, caplog, token))
    assert answer["userErrors"] == [] and not answer["accountRecovered"] and answer["accessToken"] is None
    assert answer["user"] == {"id": user_gid(user_id), "phone": PHONE}


async def test_accounts_that_are_not_fresh_devices_or_not_residents_are_never_taken_over(client, caplog):
    # A resident with a number of their own does not merge into another account: CONFLICT as before.
    a_token, _, _ = await device(client)
    await confirm(client, a_token, await verify(client, caplog, a_token))
    b_token, b_id, _ = await device(client)
    own = await confirm(
        client, b_token, await verify(client, caplog, b_token, "+8613900139000"), "+8613900139000"
    )
    assert own["userErrors"] == [] and not own["accountRecovered"]
    clash = await confirm(client, b_token, await verify(client, caplog, b_token))
    assert clash["userErrors"] and clash["userErrors"][0]["code"] == "CONFLICT", clash
    assert not clash["accountRecovered"]
    assert (await gql_data(client, "{ me { id } }", token=b_token))["me"]["id"] == user_gid(b_id)
    # A chief's account (signed in to with a password) is never handed over for a code.
    await new_account(client, Role.CHIEF, "chief.rights", phone="+8613700137000")
    c_token, c_id, _ = await device(client)
    chief_phone = "+8613700137000"
    refused_chief = await confirm(
        client, c_token, await verify(client, caplog, c_token, chief_phone), chief_phone
    )
    assert refused_chief["userErrors"][0]["code"] == "CONFLICT"
    assert refused_chief["user"] is None
    assert (await gql_data(client, "{ me { id role } }", token=c_token))["me"]["id"] == user_gid(c_id)


async def test_a_case_both_phones_reported_counts_the_recovered_resident_once(client, caplog):
    old_token, a_id, _ = await device(client)
    await confirm(client, old_token, await verify(client, caplog, old_token))
    first = await submit_ok(client, old_token, report_input("noise.neighbour", WEST))
    new_token, _, _ = await device(client)
    again = await submit_ok(client, new_token, report_input("noise.neighbour", WEST))
    assert again["case"]["id"] == first["case"]["id"] and again["case"]["reporterCount"] == 2
    recovered = await confirm(client, new_token, await verify(client, caplog, new_token))
    assert recovered["accountRecovered"]
    staff = await demo_sign_in(client, "police.west")
    case = (await gql_data(client, CASE, {"id": first["case"]["id"]}, token=staff))["node"]
    assert case["reporterCount"] == 1 and case["reportCount"] == 2
    assert {r["reporter"] for r in case["reports"]} == {"reporter 1"}


async def test_a_deleted_accounts_refresh_token_no_longer_works(client):
    key = secrets.token_urlsafe(32)
    tokens = (await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": key}}))["deviceRegister"]
    deleted = (await gql_data(client, DELETE, {"confirm": True}, token=tokens["accessToken"]))[
        "accountDelete"
    ]
    assert deleted["deleted"]
    refresh = """mutation($t: String!) { tokenRefresh(input: {refreshToken: $t}) {
      accessToken userErrors { code } } }"""
    answer = (await gql_data(client, refresh, {"t": tokens["refreshToken"]}))["tokenRefresh"]
    assert answer["accessToken"] is None and answer["userErrors"][0]["code"] == "UNAUTHENTICATED"
