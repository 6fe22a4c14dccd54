"""Chiefs hear when the case from their observation is resolved, and once per period when a rule's
period is about to end without enough patrols."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from strawberry.relay import to_base64

from identity.models import Role
from kernel import clock
from kernel.outbox import OutboxEvent
from notifications.shortfall import sweep_patrol_shortfall
from reports.models import Case
from tests.graphql_client import gql_data, new_account
from tests.notifications.helpers import inbox, kinds, plan_pending
from tests.reports.helpers import db_id, demo_sign_in, new_photo

pytestmark = pytest.mark.usefixtures("demo")

T0 = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)  # Wednesday 6 May 2026, 09:00 in Beijing
START = """mutation($input: PatrolStartInput!) { patrolStart(input: $input) {
  patrol { id } userErrors { code field message } } }"""
OBSERVE = """mutation($input: PatrolObservationRecordInput!) { patrolObservationRecord(input: $input) {
  observation { id } userErrors { code field message } } }"""
ESCALATE = """mutation($input: PatrolObservationEscalateInput!) { patrolObservationEscalate(input: $input) {
  observation { caseReference } userErrors { code field message } } }"""
TRANSITION = """mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { id status } userErrors { code field message } } }"""
AREAS = "{ patrolAreas(first: 10) { nodes { id code geometry } } }"


async def step(client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: object) -> None:
    data = await gql_data(
        client, TRANSITION, {"input": {"caseId": case_id, "action": action, **extra}}, token=token
    )
    assert data["caseTransition"]["userErrors"] == [], data


async def test_the_chief_hears_that_the_case_from_their_observation_was_resolved(
    client: httpx.AsyncClient,
) -> None:
    clock.set_clock(lambda: T0)
    chief = await demo_sign_in(client, "chief.village")
    areas = {a["code"]: a for a in (await gql_data(client, AREAS))["patrolAreas"]["nodes"]}
    river = areas["R-QH-01"]
    lon, lat = river["geometry"]["coordinates"][0]
    started = await gql_data(client, START, {"input": {
        "clientId": "p1", "areaId": river["id"], "mode": "FOOT", "startedAt": T0.isoformat()}}, token=chief)  # fmt: skip
    patrol_id = started["patrolStart"]["patrol"]["id"]
    observed = await gql_data(client, OBSERVE, {"input": {
        "clientId": "o1", "patrolId": patrol_id, "category": "FLOATING_RUBBISH",
        "location": {"latitude": lat, "longitude": lon}, "observedAt": T0.isoformat(), "note": "bottles"}},
        token=chief)  # fmt: skip
    assert observed["patrolObservationRecord"]["userErrors"] == []
    escalated = await gql_data(
        client,
        ESCALATE,
        {"input": {"observationId": observed["patrolObservationRecord"]["observation"]["id"]}},
        token=chief,
    )
    reference = escalated["patrolObservationEscalate"]["observation"]["caseReference"]
    case = await Case.get(reference=reference)
    assert case.department_id is not None
    staff = await new_account(client, Role.STAFF, "river.office", department_id=case.department_id)
    case_id = to_base64("Case", case.id)
    await step(client, staff, case_id, "ACCEPT")
    await step(client, staff, case_id, "START")
    staff_id = (await gql_data(client, "{ me { id } }", token=staff))["me"]["id"]
    photo = await new_photo(db_id(staff_id))
    clock.set_clock(lambda: T0 + timedelta(hours=2))
    await step(client, staff, case_id, "RESOLVE", note="Cleared", photoIds=[photo])
    await plan_pending()
    box = (await inbox(client, chief))["nodes"]
    assert box[0]["kind"] == "observation_case_resolved" and reference in box[0]["body"]
    assert box[0]["title"] == "您移交的巡查问题已办结"
    assert "case_resolved" not in await kinds(client, chief)  # one message per change, the chief's own


async def test_a_short_chief_is_told_once_before_the_period_ends(client: httpx.AsyncClient) -> None:
    clock.set_clock(lambda: T0)
    chief = await demo_sign_in(client, "chief.village")
    # Wednesday: the week (2026-W19) ends in four days, more than the two the setting allows.
    assert await sweep_patrol_shortfall(T0, days_before=2) == 0
    saturday = T0 + timedelta(days=3)  # Saturday 9 May, 09:00 city time
    clock.set_clock(lambda: saturday)
    first = await sweep_patrol_shortfall(saturday, days_before=2)
    assert first >= 1
    assert await sweep_patrol_shortfall(saturday + timedelta(hours=6), days_before=2) == 0
    assert await OutboxEvent.filter(kind="patrol_shortfall").count() == first
    await plan_pending()
    [notice] = (await inbox(client, chief))["nodes"]
    assert (
        notice["kind"] == "patrol_shortfall"
        and "2026-W19" in notice["body"]
        and "2026-05-10" in notice["body"]
    )
    assert notice["case"] is None
