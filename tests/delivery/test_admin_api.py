"""Admins list deliveries (dead letters with their attempts) and replay them over GraphQL; no one
else sees or replays any."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from delivery.config import DeliveryConfig
from delivery.models import Delivery, DeliveryStatus
from delivery.service import enqueue, new_delivery
from delivery.worker import DeliveryWorker
from identity.models import Role
from tests.delivery.receiver import PostChannel, Receiver, running_receiver
from tests.graphql_client import gql, gql_data, new_account, new_resident

DELIVERIES = """
query($status: DeliveryStatus, $channel: String, $first: Int, $after: String) {
  deliveries(status: $status, channel: $channel, first: $first, after: $after) {
    edges { cursor node {
      id channel targetId status attempts lastError nextAttemptAt createdAt finishedAt
      attemptLog { at succeeded statusCode error durationMs }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""

REPLAY = """
mutation($input: DeliveryReplayInput!) {
  deliveryReplay(input: $input) {
    delivery { id status attempts lastError attemptLog { succeeded } }
    userErrors { code field message }
  }
}"""


@pytest_asyncio.fixture
async def receiver(client: httpx.AsyncClient) -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


async def test_an_admin_lists_dead_letters_and_replays_one(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    admin = await new_account(client, Role.ADMIN, "admin")
    receiver.answer(1, 500, 500, 200)  # down for two attempts, then back
    await enqueue(new_delivery("test", 1, {"n": 1}), new_delivery("test", 2, {"n": 2}))
    channel = PostChannel(receiver.url)
    worker = DeliveryWorker(
        [channel], [], DeliveryConfig(max_attempts=2, backoff_base=0.001, backoff_cap=0.002)
    )
    for _ in range(50):
        await worker.run_once()
        if not await Delivery.filter(status=DeliveryStatus.PENDING).exists():
            break

    data = await gql_data(client, DELIVERIES, {"status": "DEAD"}, admin)
    (edge,) = data["deliveries"]["edges"]
    dead = edge["node"]
    assert dead["channel"] == "test" and dead["targetId"] == "1" and dead["status"] == "DEAD"
    assert dead["attempts"] == 2 and "gave up after 2 attempts" in dead["lastError"]
    assert dead["finishedAt"] is not None
    assert [(a["succeeded"], a["statusCode"]) for a in dead["attemptLog"]] == [(False, 500), (False, 500)]

    everything = await gql_data(client, DELIVERIES, {"first": 1}, admin)
    assert everything["deliveries"]["pageInfo"]["hasNextPage"] is True
    after = everything["deliveries"]["pageInfo"]["endCursor"]
    rest = await gql_data(client, DELIVERIES, {"first": 1, "after": after}, admin)
    statuses = {
        everything["deliveries"]["edges"][0]["node"]["status"],
        rest["deliveries"]["edges"][0]["node"]["status"],
    }
    assert statuses == {"DEAD", "DELIVERED"}
    assert (await gql_data(client, DELIVERIES, {"channel": "sms"}, admin))["deliveries"]["edges"] == []

    replayed = (await gql_data(client, REPLAY, {"input": {"id": dead["id"]}}, admin))["deliveryReplay"]
    assert replayed["userErrors"] == []
    assert replayed["delivery"]["status"] == "PENDING" and replayed["delivery"]["attempts"] == 0
    assert len(replayed["delivery"]["attemptLog"]) == 2  # the log is kept

    assert await worker.run_once() == 1
    node = (
        await gql_data(
            client,
            "query($id: ID!) { node(id: $id) { ... on Delivery { status attempts attemptLog { succeeded } } } }",
            {"id": dead["id"]},
            admin,
        )
    )["node"]
    assert node == {
        "status": "DELIVERED",
        "attempts": 1,
        "attemptLog": [{"succeeded": False}, {"succeeded": False}, {"succeeded": True}],
    }
    assert receiver.ids_for(1) == [receiver.ids_for(1)[0]] * 3  # the same delivery id every time

    # Only dead or cancelled deliveries can be replayed.
    again = (await gql_data(client, REPLAY, {"input": {"id": dead["id"]}}, admin))["deliveryReplay"]
    assert again["delivery"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("CONFLICT", ["input", "id"])]
    await channel.close()


async def test_replay_refuses_ids_that_are_not_deliveries(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin")
    for given, code in (("nonsense", "INVALID"), ("RGVsaXZlcnk6OTk5", "NOT_FOUND")):  # Delivery:999
        body = (await gql_data(client, REPLAY, {"input": {"id": given}}, admin))["deliveryReplay"]
        assert body["delivery"] is None and [e["code"] for e in body["userErrors"]] == [code]


async def test_no_one_but_admins_sees_or_replays_deliveries(client: httpx.AsyncClient) -> None:
    await enqueue(new_delivery("test", 1, {"secret": "payload"}))
    row = await Delivery.get(target_id=1)
    await Delivery.filter(id=row.id).update(status=DeliveryStatus.DEAD)
    admin = await new_account(client, Role.ADMIN, "admin")
    global_id = (await gql_data(client, DELIVERIES, {}, admin))["deliveries"]["edges"][0]["node"]["id"]
    staff = await new_account(client, Role.DISPATCHER, "dispatcher")
    for token in (await new_resident(client), staff, None):
        listing = await gql(client, DELIVERIES, {}, token)
        assert listing["data"] is None
        assert listing["errors"][0]["extensions"]["code"] in {"FORBIDDEN", "UNAUTHENTICATED"}
        node = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, token)
        assert node["data"]["node"] is None
        replay = await gql(client, REPLAY, {"input": {"id": global_id}}, token)
        errors = (replay.get("data") or {}).get("deliveryReplay", {}) or {}
        codes = [e["code"] for e in errors.get("userErrors", [])] or [
            e["extensions"]["code"] for e in replay.get("errors", [])
        ]
        assert codes and codes[0] in {"FORBIDDEN", "UNAUTHENTICATED"}
    await row.refresh_from_db()
    assert row.status is DeliveryStatus.DEAD
