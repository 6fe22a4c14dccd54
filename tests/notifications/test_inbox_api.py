"""The inbox and preferences over GraphQL: only the owner reads or marks, bad input is refused with
typed errors and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from kernel import clock
from notifications.models import Notification, NotificationPreference
from tests.graphql_client import gql_data
from tests.notifications.helpers import inbox, mark_read, plan_pending, set_preferences
from tests.reports.helpers import WEST, demo_sign_in, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

NODE = "query($id: ID!) { node(id: $id) { ... on Notification { id title } } }"


async def test_only_the_owner_reads_and_marks_and_the_count_follows(client: httpx.AsyncClient) -> None:
    staff = await demo_sign_in(client, "eco.staff")
    clock.set_clock(lambda: datetime(2026, 3, 9, 2, 0, tzinfo=UTC))
    for n in range(3):  # three cases a kilometre apart: not grouped into one
        token, _ = await resident(client)
        await submit_ok(client, token, report_input("noise.industrial", (WEST[0] + n / 100, WEST[1])))
    await plan_pending()
    mine = await inbox(client, staff)
    assert mine["unread"] == len(mine["nodes"]) >= 1
    ids = [n["id"] for n in mine["nodes"]]

    stranger = await demo_sign_in(client, "urban.west")
    assert (await inbox(client, stranger))["nodes"] == []
    assert (await gql_data(client, NODE, {"id": ids[0]}, token=stranger))["node"] is None
    assert (await gql_data(client, NODE, {"id": ids[0]}, token=staff))["node"]["id"] == ids[0]
    refused = await mark_read(client, stranger, ids=[ids[0]])
    assert refused["unreadCount"] is None
    assert refused["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["input", "ids", "0"], "message": "No such notification."}
    ]
    # The same answer for an id that exists nowhere, or that is another type's.
    missing = await mark_read(client, stranger, ids=["Tm90aWZpY2F0aW9uOjk5OTk5OQ==", "VXNlcjox"])
    assert [e["code"] for e in missing["userErrors"]] == ["NOT_FOUND", "NOT_FOUND"]
    assert await Notification.filter(read_at__not_isnull=True).count() == 0

    done = await mark_read(client, staff, ids=[ids[0]])
    assert done == {"unreadCount": len(ids) - 1, "userErrors": []}
    assert [n["id"] for n in (await inbox(client, staff, unread=True))["nodes"]] == ids[1:]
    assert (await mark_read(client, staff, all=True))["unreadCount"] == 0
    both = await mark_read(client, staff, ids=[ids[0]], all=True)
    assert [e["code"] for e in both["userErrors"]] == ["INVALID"]


async def test_preferences_are_validated_and_kept(client: httpx.AsyncClient) -> None:
    token, user_id = await resident(client)
    defaults = await gql_data(
        client, "{ notificationPreferences { language quietHours { from until } } }", token=token
    )
    assert defaults["notificationPreferences"] == {
        "language": "ZH_CN",
        "quietHours": {"from": "22:00", "until": "07:00"},
    }
    bad = await set_preferences(
        client, token, quietHours={"from": "25:00", "until": "07:00"}, mutedKinds=["case_accepted", "nope"]
    )
    assert bad["preferences"] is None
    assert sorted((e["code"], tuple(e["field"])) for e in bad["userErrors"]) == [
        ("INVALID", ("input", "mutedKinds", "1")),
        ("INVALID", ("input", "quietHours", "from")),
    ]
    same = await set_preferences(client, token, quietHours={"from": "07:00", "until": "07:00"})
    assert [e["field"] for e in same["userErrors"]] == [["input", "quietHours"]]
    assert not await NotificationPreference.exists(user_id=user_id)
    good = await set_preferences(client, token, language="EN", quietHours={"from": "23:30", "until": "06:15"})
    assert good["userErrors"] == [] and good["preferences"]["quietHours"] == {
        "from": "23:30",
        "until": "06:15",
    }
    kept = await set_preferences(client, token, smsEnabled=False)
    assert kept["preferences"]["language"] == "EN" and kept["preferences"]["quietHours"]["from"] == "23:30"
    anonymous = await gql_data(
        client, "mutation { notificationsMarkRead(input: {all: true}) { unreadCount userErrors { code } } }"
    )
    assert anonymous["notificationsMarkRead"]["userErrors"] == [{"code": "UNAUTHENTICATED"}]
