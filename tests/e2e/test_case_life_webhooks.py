"""Webhooks end to end: an admin registers an endpoint over GraphQL on a real server, a resident and
staff take a case through its life, and a receiver started by the test gets every event, signed
(verified with the Standard Webhooks library), in the order of the case's event log. Then the faults:
a worker killed with SIGKILL mid-batch, two workers at once, a receiver that is down (dead letters an
admin replays) and one answering 410 (the endpoint is disabled)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import IS_POSTGRES
from tests.e2e.conftest import City, eventually
from tests.e2e.helpers import (
    DELIVERY_REPLAY,
    case_events,
    deliveries,
    endpoints,
    new_case,
    rate,
    step,
    work_to_resolved,
)
from tests.graphql_client import gql_data
from tests.reports.helpers import WEST, db_id, demo_sign_in, resident
from tests.servers import _free_port
from tests.webhooks.conftest import Receiver, receiving
from tests.webhooks.helpers import admin_token, registered
from webhooks.events import EVENT_TYPES

ALLOW = {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


def verified(received: list[Any], secret: str) -> list[dict[str, Any]]:
    """Every request's payload, each verified by the Standard Webhooks library (raises if one fails)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in received]


async def test_the_receiver_gets_every_event_of_a_case_life_signed_and_in_order(
    city: City, receiver: Receiver
) -> None:
    client = await city.server(**ALLOW)
    endpoint_id, secret = await registered(client, f"{receiver.url}/city-gis")
    assert secret.startswith("whsec_")
    citizen, _ = await resident(client)
    staff = await demo_sign_in(client, "police.west")
    case = await new_case(client, citizen)
    case_id = case["id"]
    await work_to_resolved(client, staff, case_id)
    await step(client, citizen, case_id, "CONFIRM")
    await rate(client, citizen, case_id, 5)

    kinds = await case_events(client, staff, case_id)
    expected = [EVENT_TYPES[("case", kind)] for kind in kinds]
    assert expected[:2] == ["case.submitted", "case.routed"]
    assert {"case.accepted", "case.started", "case.resolved", "case.confirmed", "case.rated"} <= set(expected)
    await eventually(lambda: len(receiver.received) >= len(expected), what="every event at the receiver")
    admin = await admin_token(client)
    done = await eventually(lambda: _all_delivered(client, admin, "webhook"), what="every delivery DELIVERED")

    payloads = verified(receiver.received, secret)
    assert [p["type"] for p in payloads] == expected, city.logs()
    assert {p["data"]["case"]["id"] for p in payloads} == {case_id}
    assert {p["data"]["case"]["reference"] for p in payloads} == {case["reference"]}
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == len(ids) == len(done)  # once each, a distinct id each
    assert {r.path for r in receiver.received} == {"/city-gis"}
    assert {d["targetId"] for d in done} == {str(endpoint_id)}
    assert {d["orderingKey"] for d in done} == {f"case:{db_id(case_id)}"}


async def _all_delivered(client: Any, admin: str, channel: str) -> list[dict[str, Any]] | None:
    found = await deliveries(client, admin, channel=channel)
    return found if found and all(d["status"] == "DELIVERED" for d in found) else None


# The worker on its own: leases short enough to run out within the test, each send well under them.
STANDALONE = {"DELIVERY_WORKER_IN_PROCESS": "false"}
WORKER = {
    **ALLOW,
    "DELIVERY_LEASE_SECONDS": "3",
    "DELIVERY_TIMEOUT_SECONDS": "2.5",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "DELIVERY_BATCH": "10",
    "DELIVERY_CONCURRENCY": "10",
}
PATHS = ("/a", "/b", "/c", "/d")


async def _endpoints_on(client: Any, receiver: Receiver) -> dict[str, str]:
    """One endpoint per path (so several deliveries are in flight at once); path -> secret."""
    secrets: dict[str, str] = {}
    for path in PATHS:
        _, secrets[path] = await registered(client, receiver.url + path)
    return secrets


async def test_a_worker_killed_mid_batch_loses_nothing(city: City, receiver: Receiver) -> None:
    client = await city.server(**ALLOW, **STANDALONE)
    secrets = await _endpoints_on(client, receiver)
    citizen, _ = await resident(client)
    receiver.delay = 1.5  # hold every request: the worker is caught with its batch in flight
    doomed = await city.worker(**WORKER)
    await new_case(client, citizen)  # case.submitted and case.routed, to each of the 4 endpoints

    await eventually(lambda: len(receiver.received) >= len(PATHS), what="a batch in flight")
    doomed.kill()
    in_flight = [(r.path, r.headers["webhook-id"]) for r in receiver.received]
    assert len(in_flight) == len(PATHS), in_flight  # one at a time per endpoint and case
    admin = await admin_token(client)
    assert {d["status"] for d in await deliveries(client, admin, channel="webhook")} == {"PENDING"}

    receiver.delay = 0
    await city.worker(**WORKER)
    done = await eventually(
        lambda: _all_delivered(client, admin, "webhook"), within=60, what="every delivery DELIVERED"
    )
    assert len(done) == 2 * len(PATHS)

    # Every event reached every endpoint at least once; a repeat carries the same webhook-id, and
    # the ones killed in flight came again once their lease ran out.
    ids_by_event: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in receiver.received:
        payload = Webhook(secrets[request.path]).verify(request.body, request.headers)
        ids_by_event[(request.path, payload["type"])].add(request.headers["webhook-id"])
    assert sorted(ids_by_event) == sorted(
        (path, kind) for path in PATHS for kind in ("case.submitted", "case.routed")
    )
    assert all(len(ids) == 1 for ids in ids_by_event.values()), ids_by_event
    again = [(r.path, r.headers["webhook-id"]) for r in receiver.received[len(in_flight) :]]
    assert set(in_flight) <= set(again)
    # and per endpoint still in the case's order
    for path in PATHS:
        types = [json.loads(r.body)["type"] for r in receiver.received if r.path == path]
        assert types[-1] == "case.routed" and types.index("case.routed") > types.index("case.submitted")


@pytest.mark.skipif(not IS_POSTGRES, reason="several workers share a PostgreSQL database")
async def test_two_workers_never_send_the_same_delivery_at_once(city: City, receiver: Receiver) -> None:
    client = await city.server(**ALLOW, **STANDALONE)
    secrets = await _endpoints_on(client, receiver)
    citizen, _ = await resident(client)
    staff = await demo_sign_in(client, "police.west")
    receiver.delay = 0.2
    # small batches, so that neither worker can hold all the work
    workers = [await city.worker(**{**WORKER, "DELIVERY_BATCH": "4"}) for _ in range(2)]
    for n in range(3):  # three cases about 1 km apart (no grouping), all in the West District
        case = await new_case(client, citizen, at=(WEST[0], WEST[1] + 0.01 * n))
        await work_to_resolved(client, staff, case["id"])
    admin = await admin_token(client)
    done = await eventually(
        lambda: _all_delivered(client, admin, "webhook"), within=90, what="every delivery DELIVERED"
    )
    assert receiver.overlaps == []
    for worker in workers:  # both took part
        assert "HTTP Request: POST" in worker.log_path.read_text(), city.logs()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == len(done)  # each exactly once: no lease ran out, none sent twice
    for request in receiver.received:
        Webhook(secrets[request.path]).verify(request.body, request.headers)


async def test_a_receiver_that_is_down_gets_everything_after_an_admin_replays(city: City) -> None:
    client = await city.server(**ALLOW, DELIVERY_MAX_ATTEMPTS="3")
    port = _free_port()  # nothing listens there yet
    _, secret = await registered(client, f"http://127.0.0.1:{port}/hooks")
    citizen, _ = await resident(client)
    case = await new_case(client, citizen)
    admin = await admin_token(client)

    async def all_dead() -> list[dict[str, Any]] | None:
        found = await deliveries(client, admin, channel="webhook")
        return found if len(found) == 2 and all(d["status"] == "DEAD" for d in found) else None

    await eventually(all_dead, what="both deliveries dead-lettered")
    dead = await deliveries(client, admin, status="DEAD")
    assert len(dead) == 2
    assert all(d["attempts"] == 3 and d["lastError"] for d in dead), dead
    assert await deliveries(client, admin, status="PENDING") == []

    with receiving(port) as receiver:
        for delivery in sorted(dead, key=lambda d: db_id(d["id"])):
            replayed = await gql_data(client, DELIVERY_REPLAY, {"input": {"id": delivery["id"]}}, token=admin)
            assert replayed["deliveryReplay"]["userErrors"] == [], replayed
        await eventually(lambda: _all_delivered(client, admin, "webhook"), what="replayed and delivered")
        payloads = verified(receiver.received, secret)
    assert sorted(p["type"] for p in payloads) == ["case.routed", "case.submitted"]
    assert {p["data"]["case"]["id"] for p in payloads} == {case["id"]}
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(
        f"msg_{db_id(d['id'])}" for d in dead
    )  # the same ids as before: a receiver that saw one already can drop it


async def test_a_receiver_answering_410_disables_its_endpoint(city: City, receiver: Receiver) -> None:
    client = await city.server(**ALLOW)
    gone_id, _ = await registered(client, receiver.url + "/gone")
    kept_id, kept_secret = await registered(client, receiver.url + "/kept")
    receiver.status_by_path = {"/gone": 410}
    citizen, _ = await resident(client)
    await new_case(client, citizen)
    admin = await admin_token(client)

    async def disabled() -> list[dict[str, Any]] | None:
        found = await endpoints(client, admin)
        return found if any(not e["enabled"] for e in found) else None

    listed = {db_id(e["id"]): e for e in await eventually(disabled, what="the endpoint disabled")}
    assert listed[gone_id]["enabled"] is False and "410" in listed[gone_id]["disabledReason"]
    assert listed[kept_id]["enabled"] is True
    kept = await eventually(
        lambda: len([r for r in receiver.received if r.path == "/kept"]) >= 3, what="the other one"
    )
    assert kept
    told = verified([r for r in receiver.received if r.path == "/kept"], kept_secret)
    # the other endpoint hears every type: the case's events and that an endpoint was disabled
    assert sorted(p["type"] for p in told) == ["case.routed", "case.submitted", "webhook_endpoint.disabled"]
    (notice,) = [p for p in told if p["type"] == "webhook_endpoint.disabled"]
    assert db_id(notice["data"]["webhookEndpoint"]["id"]) == gone_id
    assert len([r for r in receiver.received if r.path == "/gone"]) == 1  # not called again
    gone = [d for d in await deliveries(client, admin, channel="webhook") if d["targetId"] == str(gone_id)]
    assert sorted(d["status"] for d in gone) == ["CANCELLED", "DEAD"], gone


async def test_a_slow_receiver_times_out_and_holds_up_no_other(city: City, receiver: Receiver) -> None:
    client = await city.server(**ALLOW, WEBHOOK_TIMEOUT_SECONDS="1", DELIVERY_TIMEOUT_SECONDS="1.5")
    slow_id, _ = await registered(client, receiver.url + "/slow")
    _, fast_secret = await registered(client, receiver.url + "/fast")
    receiver.delay_by_path = {"/slow": 4.0}  # well past the timeout
    citizen, _ = await resident(client)
    await new_case(client, citizen)
    admin = await admin_token(client)

    def fast() -> list[Any]:
        return [r for r in receiver.received if r.path == "/fast"]

    await eventually(lambda: len(fast()) == 2, what="the fast endpoint's events")
    assert sorted(p["type"] for p in verified(fast(), fast_secret)) == ["case.routed", "case.submitted"]

    async def timed_out() -> list[dict[str, Any]]:
        found = await deliveries(client, admin, channel="webhook")
        return [d for d in found if d["targetId"] == str(slow_id) and d["attempts"] >= 1]

    (first,) = await eventually(timed_out, what="the slow endpoint's first attempt given up")
    assert first["status"] == "PENDING" and "1 s" in first["lastError"], first  # to be retried
