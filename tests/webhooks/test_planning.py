"""Planning: which endpoints hear of which outbox rows, and what the payload holds."""

from __future__ import annotations

import httpx
import pytest

from kernel.outbox import OutboxEvent
from reports.deadlines import ESCALATED, REMINDED
from reports.lifecycle import Action
from reports.models import Case
from reports.service import REPORT_ADDED
from tests.reports.helpers import EAST, WEST, db_id, report_input, resident, submit_ok
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import last_event_id, plan_all, registered
from webhooks.events import EVENT_TYPES, KNOWN_EVENT_TYPES
from webhooks.models import WebhookEndpoint
from webhooks.planning import plan_webhooks

pytestmark = pytest.mark.usefixtures("demo")


def test_every_case_kind_has_a_type() -> None:
    kinds = {kind for subject, kind in EVENT_TYPES if subject == "case"}
    assert {a.value for a in Action} | {REPORT_ADDED, REMINDED, ESCALATED} <= kinds
    assert len(KNOWN_EVENT_TYPES) == len(EVENT_TYPES)  # one name per kind
    assert all(t.count(".") == 1 and t == t.lower() for t in KNOWN_EVENT_TYPES)


async def test_filters_choose_the_endpoints(client: httpx.AsyncClient, receiver: Receiver) -> None:
    everything, _ = await registered(client, receiver.url + "/all")
    submitted_only, _ = await registered(client, receiver.url + "/submitted", eventTypes=["case.submitted"])
    west, _ = await registered(client, receiver.url + "/west", departmentCode="police-west")
    construction, _ = await registered(client, receiver.url + "/c", categoryCode="noise.construction")
    other_category, _ = await registered(client, receiver.url + "/o", categoryCode="noise.neighbour")
    switched_off, _ = await registered(client, receiver.url + "/off")
    await WebhookEndpoint.filter(id=switched_off).update(enabled=False)

    before = await last_event_id()
    token, _ = await resident(client)
    west_case = await submit_ok(client, token, report_input("noise.neighbour", WEST))
    assert west_case["case"]["department"]["code"] == "police-west", west_case
    deliveries = await plan_all(before)
    by_endpoint: dict[int, list[str]] = {}
    for d in deliveries:
        by_endpoint.setdefault(d.target_id, []).append(d.payload["type"])
    events = await OutboxEvent.filter(id__gt=before, subject="case").count()
    assert len(by_endpoint[everything]) == events >= 2
    assert by_endpoint[submitted_only] == ["case.submitted"]
    assert by_endpoint[west] == by_endpoint[everything]
    assert by_endpoint[other_category] == by_endpoint[everything]
    assert construction not in by_endpoint and switched_off not in by_endpoint

    before = await last_event_id()
    east_case = await submit_ok(client, (await resident(client))[0], report_input("noise.neighbour", EAST))
    assert east_case["case"]["department"]["code"] not in (None, "police-west")
    heard = {d.target_id for d in await plan_all(before)}
    assert everything in heard and other_category in heard and west not in heard


async def test_a_join_is_told_with_the_new_count_and_in_case_order(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint, _ = await registered(client, receiver.url)
    first = await submit_ok(client, (await resident(client))[0], report_input("noise.construction", WEST))
    before = await last_event_id()
    second = await submit_ok(client, (await resident(client))[0], report_input("noise.construction", WEST))
    assert second["joinedExistingCase"] is True
    deliveries = await plan_all(before)
    assert [d.payload["type"] for d in deliveries] == ["case.report_added"]
    case = deliveries[0].payload["data"]["case"]
    assert case["id"] == first["case"]["id"] and case["reporterCount"] == 2
    assert deliveries[0].ordering_key == f"case:{db_id(first['case']['id'])}"
    assert deliveries[0].target_id == endpoint


async def test_the_payload_shows_the_public_location_only(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await registered(client, receiver.url)
    before = await last_event_id()
    # A category reported at homes: the public map shows a coarsened point, and so do webhooks.
    submitted = await submit_ok(
        client, (await resident(client))[0], report_input("noise.neighbour", (30.26123, 120.10456))
    )
    case = await Case.get(id=db_id(submitted["case"]["id"]))
    assert (case.public_latitude, case.public_longitude) != (case.latitude, case.longitude)
    (event, *_) = await OutboxEvent.filter(id__gt=before).order_by("id")
    (delivery,) = await plan_webhooks(event)
    location = delivery.payload["data"]["case"]["location"]
    assert location == {"latitude": case.public_latitude, "longitude": case.public_longitude}
    assert delivery.payload["timestamp"] == event.created_at.isoformat()
