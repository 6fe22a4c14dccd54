"""Assignment and delegation validity: an ended or not-yet-valid assignment neither allows recording a
patrol nor counts in compliance; delegations are listed and ended early (issue 17 item 8)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from identity.models import Role
from kernel import clock
from patrols.models import ChiefAssignment, Delegation
from tests.conftest import make_settings
from tests.graphql_client import gql_data, new_account
from tests.patrols.test_patrols_api import COMPLIANCE, T0, append, demo_city, finish, start, walk

END = """mutation($input: ChiefAssignmentEndInput!) { chiefAssignmentEnd(input: $input) {
  assignment { validTo } userErrors { code field message } } }"""
CREATE = """mutation($input: ChiefAssignmentCreateInput!) { chiefAssignmentCreate(input: $input) {
  assignment { id validFrom } userErrors { code field message } } }"""
DELEGATE = """mutation($input: PatrolDelegationCreateInput!) { patrolDelegationCreate(input: $input) {
  delegation { id validFrom validTo } userErrors { code message } } }"""
END_DELEGATION = """mutation($input: PatrolDelegationEndInput!) { patrolDelegationEnd(input: $input) {
  delegation { id validTo chief { username } assistant { username } } userErrors { code field message } } }"""
DELEGATIONS = """query($current: Boolean) { patrolDelegations(current: $current) {
  id validFrom validTo chief { username } assistant { username } } }"""
MY_ASSIGNMENTS = "{ myAssignments { id area { code } validFrom validTo } }"


@pytest.fixture
def settings(tmp_path):
    return make_settings(media_root=tmp_path / "media", access_token_seconds=30 * 86400)


@pytest.fixture
async def city(client):
    return await demo_city(client)


async def _village_assignment(client, city) -> str:
    rows = (await gql_data(client, MY_ASSIGNMENTS, token=city["tokens"]["chief.village"]))["myAssignments"]
    [row] = [r for r in rows if r["area"]["code"] == "R-QH-01"]
    return row["id"]


async def _patrol(client, city, started: datetime, client_id: str, user: str = "chief.village") -> dict:
    token = city["tokens"][user]
    began = await start(client, city, user=user, client_id=client_id, started=started)
    assert began["userErrors"] == [], began
    points = walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 900, random.Random(5), t0=started)
    await append(client, token, began["patrol"]["id"], points)
    done = await finish(client, token, began["patrol"]["id"], started + timedelta(seconds=899))
    assert done["userErrors"] == []
    return began["patrol"]


async def test_an_ended_assignment_stops_recording_from_the_next_day(client, city):
    admin = city["tokens"]["admin"]
    ended = await gql_data(client, END, {"input": {"assignmentId": await _village_assignment(client, city),
                                                   "validTo": "2026-05-05"}}, token=admin)  # fmt: skip
    assert ended["chiefAssignmentEnd"] == {"assignment": {"validTo": "2026-05-05"}, "userErrors": []}
    refused = await start(client, city, client_id="after")  # 6 May, the day after it ended
    assert refused["patrol"] is None and refused["userErrors"][0]["code"] == "FORBIDDEN"
    # A patrol of its last day (uploaded late, from an offline phone) is still the chief's.
    last_day = await start(client, city, client_id="last-day", started=T0 - timedelta(days=1))
    assert last_day["userErrors"] == []


async def test_a_not_yet_valid_assignment_allows_nothing_before_it_starts(client, city):
    newcomer = await new_account(client, Role.CHIEF, "chief.new")
    newcomer_id = (await gql_data(client, "{ me { id } }", token=newcomer))["me"]["id"]
    created = await gql_data(client, CREATE, {"input": {"chiefId": newcomer_id, "areaId": city["areas"]["R-QH-01"]["id"],
        "level": "VILLAGE", "kind": "RIVER", "validFrom": "2026-05-11"}}, token=city["tokens"]["admin"])  # fmt: skip
    assert created["chiefAssignmentCreate"]["userErrors"] == []
    city["tokens"]["chief.new"] = newcomer
    early = await start(client, city, user="chief.new", client_id="early")  # 6 May
    assert early["userErrors"][0]["code"] == "FORBIDDEN"
    clock.set_clock(lambda: T0 + timedelta(days=5, hours=1))
    on_time = await start(client, city, user="chief.new", client_id="on-time", started=T0 + timedelta(days=5))
    assert on_time["userErrors"] == []
    # Before it starts the newcomer is assessed for nothing; from its first day, for the weeks it covers.
    verdicts = await gql_data(client, COMPLIANCE, {"chief": newcomer_id, "from": "2026-05-04", "to": "2026-05-10"},
                              token=city["tokens"]["admin"])  # fmt: skip
    assert verdicts["patrolCompliance"] == []
    verdicts = await gql_data(client, COMPLIANCE, {"chief": newcomer_id, "from": "2026-05-04", "to": "2026-05-17"},
                              token=city["tokens"]["admin"])  # fmt: skip
    [verdict] = verdicts["patrolCompliance"]
    assert [p["label"] for p in verdict["periods"] if p["required"]] == ["2026-W20"]


async def test_patrols_outside_the_assignment_do_not_count_in_compliance(client, city):
    inside = await _patrol(client, city, T0, "inside")  # Wednesday 6 May
    clock.set_clock(lambda: T0 + timedelta(days=1, hours=1))
    outside = await _patrol(client, city, T0 + timedelta(days=1), "outside")  # Thursday 7 May
    # The assignment is then ended on 6 May (a correction): the 7 May patrol no longer counts for it.
    await ChiefAssignment.filter(chief__username="chief.village").update(valid_to=datetime(2026, 5, 6).date())
    verdicts = (await gql_data(client, COMPLIANCE, {"chief": city["users"]["chief.village"], "from": "2026-05-04",
                "to": "2026-05-10"}, token=city["tokens"]["admin"]))["patrolCompliance"]  # fmt: skip
    [verdict] = verdicts
    judged = {j["patrolId"] for j in verdict["patrols"]}
    assert inside["id"] in judged and outside["id"] not in judged
    # The week is only partly inside the assignment now: nothing is required of it.
    assert verdict["required"] == 0


async def test_delegations_are_listed_and_ended_early(client, city):
    clock.set_clock(None)
    assistant = await new_account(client, Role.CHIEF, "assistant")
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    city["tokens"]["assistant"] = assistant
    assistant_id = (await gql_data(client, "{ me { id } }", token=assistant))["me"]["id"]
    chief = city["tokens"]["chief.village"]
    given = await gql_data(client, DELEGATE, {"input": {"assistantId": assistant_id, "validFrom": "2026-05-01",
                           "validTo": "2026-05-31"}}, token=chief)  # fmt: skip
    delegation = given["patrolDelegationCreate"]["delegation"]
    assert delegation["id"] and given["patrolDelegationCreate"]["userErrors"] == []

    listed = {"id": delegation["id"], "validFrom": "2026-05-01", "validTo": "2026-05-31",
              "chief": {"username": "chief.village"}, "assistant": {"username": "assistant"}}  # fmt: skip
    for user, expected in [("chief.village", [listed]), ("assistant", [listed]), ("admin", [listed]),
                           ("chief.county", []), ("chief.lake", [])]:  # fmt: skip
        token = city["tokens"][user]
        assert (await gql_data(client, DELEGATIONS, {"current": True}, token=token))[
            "patrolDelegations"
        ] == expected

    # Neither the assistant nor an unrelated chief may end it; the unrelated one cannot even see it.
    by_assistant = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation["id"],
                                  "validTo": "2026-05-06"}}, token=assistant)  # fmt: skip
    assert [e["code"] for e in by_assistant["patrolDelegationEnd"]["userErrors"]] == ["FORBIDDEN"]
    by_other = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation["id"],
                              "validTo": "2026-05-06"}}, token=city["tokens"]["chief.lake"])  # fmt: skip
    assert [e["code"] for e in by_other["patrolDelegationEnd"]["userErrors"]] == ["NOT_FOUND"]
    # Ending cannot extend it, nor rewrite the past (4 May is before yesterday).
    for bad in ("2026-06-30", "2026-05-04"):
        refused = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation["id"], "validTo": bad}},
                                 token=chief)  # fmt: skip
        assert [e["code"] for e in refused["patrolDelegationEnd"]["userErrors"]] == ["INVALID"], bad
    assert (await Delegation.get(id=1)).valid_to.isoformat() == "2026-05-31"  # nothing changed

    ended = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation["id"], "validTo": "2026-05-06"}},
                           token=chief)  # fmt: skip
    assert ended["patrolDelegationEnd"]["delegation"]["validTo"] == "2026-05-06"
    again = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation["id"], "validTo": "2026-05-06"}},
                           token=chief)  # fmt: skip
    assert again["patrolDelegationEnd"] == ended["patrolDelegationEnd"]  # retry-safe

    today = await start(client, city, user="assistant", client_id="a-today")  # 6 May: its last day
    assert today["userErrors"] == [] and today["patrol"]["delegated"]
    tomorrow = await start(
        client, city, user="assistant", client_id="a-later", started=T0 + timedelta(days=1)
    )
    assert tomorrow["userErrors"][0]["code"] == "FORBIDDEN"
    clock.set_clock(lambda: T0 + timedelta(days=1, hours=1))
    assert (await gql_data(client, DELEGATIONS, {"current": True}, token=chief))["patrolDelegations"] == []
    assert len((await gql_data(client, DELEGATIONS, {}, token=chief))["patrolDelegations"]) == 1


async def test_a_delegation_not_started_yet_is_cancelled_with_the_day_before(client, city):
    clock.set_clock(None)
    assistant = await new_account(client, Role.CHIEF, "assistant")
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    assistant_id = (await gql_data(client, "{ me { id } }", token=assistant))["me"]["id"]
    chief = city["tokens"]["chief.village"]
    given = await gql_data(client, DELEGATE, {"input": {"assistantId": assistant_id, "validFrom": "2026-06-01",
                           "validTo": "2026-06-30"}}, token=chief)  # fmt: skip
    delegation_id = given["patrolDelegationCreate"]["delegation"]["id"]
    cancelled = await gql_data(client, END_DELEGATION, {"input": {"delegationId": delegation_id, "validTo": "2026-05-31"}},
                               token=chief)  # fmt: skip
    assert cancelled["patrolDelegationEnd"]["userErrors"] == []
    city["tokens"]["assistant"] = assistant
    clock.set_clock(lambda: datetime(2026, 6, 2, 2, tzinfo=UTC))
    june = await start(
        client, city, user="assistant", client_id="june", started=datetime(2026, 6, 2, 1, tzinfo=UTC)
    )
    assert june["userErrors"][0]["code"] == "FORBIDDEN"
