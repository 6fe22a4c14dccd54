"""Who hears what of a case's life: residents in their own language, the department's staff, the
assignee, escalations (督办) to the department, and nobody about their own step; then the channels:
muted kinds, opt-outs and quiet hours; and an inbox nobody else can read or mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from strawberry.relay import to_base64

from delivery.models import Delivery
from identity.models import Role, User
from kernel import clock
from notifications.models import PushSubscription
from reports.deadlines import escalate_due_cases
from reports.models import Department
from tests.graphql_client import gql_data, new_account
from tests.notifications.helpers import inbox, kinds, plan_pending, set_preferences
from tests.reports.helpers import WEST, db_id, demo_sign_in, new_photo, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)
TRANSITION = """mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { id version status } userErrors { code field message } } }"""
ASSIGN = """mutation($input: CaseAssignInput!) {
  caseAssign(input: $input) { case { id } userErrors { code field message } } }"""


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment.astimezone(UTC))


async def step(client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: object) -> None:
    data = await gql_data(
        client, TRANSITION, {"input": {"caseId": case_id, "action": action, **extra}}, token=token
    )
    assert data["caseTransition"]["userErrors"] == [], data


async def me(client: httpx.AsyncClient, token: str) -> int:
    return db_id((await gql_data(client, "{ me { id } }", token=token))["me"]["id"])


def of(deliveries: list[Delivery], channel: str, target: int) -> list[Delivery]:
    return [d for d in deliveries if d.channel == channel and d.target_id == target]


async def test_a_case_life_reaches_the_right_people_in_their_language(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    alice, alice_id = await resident(client)  # reads English, has a phone and a browser subscribed
    bob, bob_id = await resident(client)  # reads Chinese, mutes resolutions, no push
    await User.filter(id=alice_id).update(phone="+8613800000001")
    await User.filter(id=bob_id).update(phone="+8613800000002")
    await PushSubscription.create(
        user_id=alice_id, endpoint="https://push.example/alice", p256dh="k", auth="a", created_at=clock.now()
    )
    await PushSubscription.create(
        user_id=bob_id, endpoint="https://push.example/bob", p256dh="k", auth="a", created_at=clock.now()
    )
    chosen = await set_preferences(client, alice, language="EN")
    assert chosen["userErrors"] == [] and chosen["preferences"]["language"] == "EN"
    chosen = await set_preferences(client, bob, pushEnabled=False, mutedKinds=["case_resolved"])
    assert chosen["userErrors"] == [] and chosen["preferences"]["mutedKinds"] == ["case_resolved"]

    eco = (await Department.get(code="eco")).id
    staff = await demo_sign_in(client, "eco.staff")
    other = await new_account(client, Role.STAFF, "eco.second", department_id=eco)
    dispatcher = await demo_sign_in(client, "dispatcher")
    staff_id, other_id = await me(client, staff), await me(client, other)
    await User.filter(id=staff_id).update(phone="+8613800000003")

    first = await submit_ok(client, alice, report_input("noise.industrial", WEST, description="Factory hum"))
    joined = await submit_ok(client, bob, report_input("noise.industrial", WEST, description="Hum again"))
    assert joined["joinedExistingCase"] and joined["case"]["id"] == first["case"]["id"]
    case_id = first["case"]["id"]
    await plan_pending()
    # The case entered eco's queue: its staff hear it; the residents hear nothing of routing.
    assert await kinds(client, staff) == ["case_queued"] and await kinds(client, other) == ["case_queued"]
    assert await kinds(client, alice) == [] and await kinds(client, bob) == []

    assigned = await gql_data(
        client,
        ASSIGN,
        {"input": {"caseId": case_id, "assigneeId": to_base64("User", other_id)}},
        token=dispatcher,
    )
    assert assigned["caseAssign"]["userErrors"] == []
    at(MONDAY + timedelta(hours=1))
    await step(client, staff, case_id, "ACCEPT")
    deliveries = await plan_pending()
    assert await kinds(client, other) == ["case_assigned", "case_queued"]
    assert await kinds(client, dispatcher) == []  # assigning was the dispatcher's own act
    assert await kinds(client, staff) == ["case_queued"]  # accepting was eco.staff's own act
    alice_box, bob_box = (await inbox(client, alice))["nodes"], (await inbox(client, bob))["nodes"]
    assert [n["title"] for n in alice_box] == ["Your report was accepted"]
    assert first["case"]["reference"] in alice_box[0]["body"] and "Industrial noise" in alice_box[0]["body"]
    assert [n["title"] for n in bob_box] == ["您的反映已受理"] and "工业噪声" in bob_box[0]["body"]
    assert alice_box[0]["case"]["id"] == case_id
    # Alice: push to her browser and an SMS now (11:00 is outside her quiet hours); Bob: SMS only.
    [push] = of(deliveries, "push", (await PushSubscription.get(user_id=alice_id)).id)
    assert push.payload["title"] == "Your report was accepted"
    assert push.payload["notification"] == db_id(alice_box[0]["id"])
    [sms] = of(deliveries, "sms", alice_id)
    assert sms.payload["template"] == "case_accepted" and sms.payload["language"] == "en"
    assert sms.payload["params"]["reference"] == first["case"]["reference"]
    assert sms.next_attempt_at <= clock.now()
    assert of(deliveries, "push", (await PushSubscription.get(user_id=bob_id)).id) == []
    assert [d.payload["language"] for d in of(deliveries, "sms", bob_id)] == ["zh-CN"]

    await step(client, staff, case_id, "START")
    # Weeks later the case is overdue: the pass escalates it (督办) to the whole department.
    late = MONDAY + timedelta(days=30)
    at(late)
    assert (await escalate_due_cases(clock.now())).escalated == 1
    deliveries = await plan_pending()
    assert "case_escalated" in await kinds(client, staff) and "case_escalated" in await kinds(client, other)
    [escalation_sms] = of(deliveries, "sms", staff_id)  # escalations are SMS-worthy; eco.second has no phone
    assert escalation_sms.payload["template"] == "case_escalated"
    assert await kinds(client, alice) == ["case_accepted"]

    # Resolved at 23:00 city time: inside Alice's quiet hours (22:00-07:00), so her SMS waits until 07:00.
    night = late.replace(hour=23)
    at(night)
    photo = await new_photo(other_id)
    await step(client, other, case_id, "RESOLVE", note="Silencer fitted", photoIds=[photo])
    deliveries = await plan_pending()
    assert [n["kind"] for n in (await inbox(client, alice))["nodes"]] == ["case_resolved", "case_accepted"]
    assert await kinds(client, bob) == ["case_accepted"]  # he muted resolutions: not even the inbox
    [night_sms] = of(deliveries, "sms", alice_id)
    assert night_sms.next_attempt_at == (night + timedelta(hours=8)).replace(hour=7).astimezone(UTC)
    assert of(deliveries, "sms", bob_id) == []

    at(night + timedelta(hours=10))
    check = await new_photo(await me(client, dispatcher))
    await step(client, dispatcher, case_id, "VERIFY_PASS", photoIds=[check])
    await step(client, alice, case_id, "CONFIRM")
    await plan_pending()
    assert await kinds(client, bob) == ["case_accepted", "case_closed"]
    assert "case_closed" not in await kinds(client, alice)  # she closed it herself


async def test_opting_out_leaves_the_inbox_only(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    token, user_id = await resident(client)
    await User.filter(id=user_id).update(phone="+8613800000009")
    await PushSubscription.create(
        user_id=user_id, endpoint="https://push.example/x", p256dh="k", auth="a", created_at=clock.now()
    )
    chosen = await set_preferences(client, token, smsEnabled=False, pushEnabled=False, quietHours=None)
    assert chosen["userErrors"] == []
    assert chosen["preferences"] == {
        "language": "ZH_CN",
        "pushEnabled": False,
        "smsEnabled": False,
        "quietHours": None,
        "mutedKinds": [],
    }
    staff = await demo_sign_in(client, "eco.staff")
    case = (await submit_ok(client, token, report_input("noise.industrial", WEST)))["case"]
    await step(client, staff, case["id"], "ACCEPT")
    deliveries = await plan_pending()
    assert await kinds(client, token) == ["case_accepted"]
    assert [d for d in deliveries if d.target_id == user_id or d.channel == "push"] == []


async def test_return_to_triage_tells_the_residents_and_the_dispatchers(client: httpx.AsyncClient) -> None:
    at(MONDAY)
    token, _ = await resident(client)
    staff = await demo_sign_in(client, "eco.staff")
    dispatcher = await demo_sign_in(client, "dispatcher")
    case = (await submit_ok(client, token, report_input("noise.industrial", WEST)))["case"]
    await plan_pending()
    await step(client, staff, case["id"], "RETURN", reason="Not ours")
    await plan_pending()
    assert await kinds(client, token) == ["case_returned"]
    [triage] = (await inbox(client, dispatcher))["nodes"]
    assert triage["kind"] == "case_triage" and "未匹配" not in triage["body"] and "退回" in triage["body"]
    assert await kinds(client, staff) == ["case_queued"]
