"""Signboards (公示牌): public, cacheable, changing the day an assignment changes (issue 17 item 6)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest

from identity.models import Role
from kernel import clock
from patrols.signboard import NameDisplay, published_name
from tests.conftest import make_settings
from tests.graphql_client import gql_data, new_account
from tests.patrols.test_patrols_api import T0, demo_city

SIGNBOARD = """query($code: String!) { signboard(areaCode: $code) { code name kind region
  chiefs { level kind position name since } responsibilities officePhone complaintUrl qrPayload
  validFrom validUntil } }"""
END = """mutation($input: ChiefAssignmentEndInput!) { chiefAssignmentEnd(input: $input) {
  assignment { validTo } userErrors { code message } } }"""
CREATE = """mutation($input: ChiefAssignmentCreateInput!) { chiefAssignmentCreate(input: $input) {
  assignment { id } userErrors { code message } } }"""


@pytest.fixture
def settings(tmp_path):
    return make_settings(
        media_root=tmp_path / "media",
        access_token_seconds=30 * 86400,
        signboard_office_phone="0371-12345678",
        signboard_complaint_url="https://example.org/complain?area={code}",
    )


@pytest.fixture
async def city(client):
    return await demo_city(client)


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


async def _board(client, code: str = "R-QH-01") -> dict:
    return (await gql_data(client, SIGNBOARD, {"code": code}))["signboard"]


async def test_the_signboard_of_r_qh_01_changes_the_day_its_chief_changes(client, city):
    before = await _board(client)
    assert before["chiefs"] == [
        {
            "level": "COUNTY",
            "kind": "RIVER",
            "position": "县级河长",
            "name": "郑 县级河长",
            "since": "2026-01-01",
        },
        {
            "level": "VILLAGE",
            "kind": "RIVER",
            "position": "村级河长",
            "name": "黄 村级河长",
            "since": "2026-01-01",
        },
    ]
    assert before["officePhone"] == "0371-12345678"
    assert before["complaintUrl"] == before["qrPayload"] == "https://example.org/complain?area=R-QH-01"
    assert before["responsibilities"] and before["validUntil"] is None
    http = await client.get("/patrol-areas/R-QH-01/signboard.json")
    assert http.status_code == 200 and http.json()["chiefs"] == before["chiefs"]
    assert http.headers["cache-control"] == "public, max-age=60" and http.headers["etag"]
    first_tag = http.headers["etag"]
    again = await client.get("/patrol-areas/R-QH-01/signboard.json", headers={"if-none-match": first_tag})
    assert again.status_code == 304 and again.content == b""

    # The village chief hands over: the old assignment ends on 10 May, the new one starts on 11 May.
    admin = city["tokens"]["admin"]
    mine = await gql_data(
        client, "{ myAssignments { id area { code } } }", token=city["tokens"]["chief.village"]
    )
    [village] = [a["id"] for a in mine["myAssignments"] if a["area"]["code"] == "R-QH-01"]
    ended = await gql_data(
        client, END, {"input": {"assignmentId": village, "validTo": "2026-05-10"}}, token=admin
    )
    assert ended["chiefAssignmentEnd"]["userErrors"] == []
    clock.set_clock(None)
    successor = await new_account(client, Role.CHIEF, "chief.li", display_name="村级河长 李明 Li Ming")
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    successor_id = (await gql_data(client, "{ me { id } }", token=successor))["me"]["id"]
    created = await gql_data(client, CREATE, {"input": {"chiefId": successor_id, "areaId": city["areas"]["R-QH-01"]["id"],
        "level": "VILLAGE", "kind": "RIVER", "validFrom": "2026-05-11"}}, token=admin)  # fmt: skip
    assert created["chiefAssignmentCreate"]["userErrors"] == []

    # Until the evening of 10 May (Beijing) the signboard names 黄; it says when it changes.
    for moment in (T0 + timedelta(hours=1), beijing(10, 23, 59)):
        clock.set_clock(functools.partial(lambda at: at, moment))
        board = await _board(client)
        assert [c["name"] for c in board["chiefs"]] == ["郑 县级河长", "黄 村级河长"], moment
        assert board["validUntil"] == "2026-05-10"
    clock.set_clock(lambda: beijing(11, 0, 1))
    after = await _board(client)
    assert after["chiefs"][1] == {"level": "VILLAGE", "kind": "RIVER", "position": "村级河长", "name": "李 村级河长",
                                  "since": "2026-05-11"}  # fmt: skip
    assert after["validFrom"] == "2026-05-11" and after["validUntil"] is None
    changed = await client.get("/patrol-areas/R-QH-01/signboard.json", headers={"if-none-match": first_tag})
    assert changed.status_code == 200 and changed.headers["etag"] != first_tag
    assert changed.json()["chiefs"][1]["name"] == "李 村级河长"


async def test_signboards_are_public_and_name_no_phone_or_account(client, city):
    board = await client.get("/patrol-areas/F-BS-01/signboard.json")
    assert board.status_code == 200
    text = board.text
    assert "chief.forest" not in text and "VXNlcj" not in text  # no username, no account id
    assert [c["position"] for c in board.json()["chiefs"]] == ["乡级林长"]
    assert (await client.get("/patrol-areas/NOPE/signboard.json")).status_code == 404
    assert (await _board(client, "NOPE")) is None
    lake = await _board(client, "L-MJ-01")
    assert lake["kind"] == "LAKE" and lake["chiefs"][0]["position"] == "乡级湖长"


def test_names_are_published_as_the_city_chooses() -> None:
    shown = "村级河长 黄勇 Huang Yong"
    assert published_name(shown, "村级河长", NameDisplay.FULL) == shown
    assert published_name(shown, "村级河长", NameDisplay.SURNAME) == "黄 村级河长"
    assert published_name(shown, "村级河长", NameDisplay.POSITION) is None
    assert published_name("Wang Fang", "村级河长", NameDisplay.SURNAME) == "F 村级河长"
