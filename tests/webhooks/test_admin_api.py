"""Managing webhooks over GraphQL: admins only, every input validated with typed user errors, the
secret shown once, the delivery log and replay."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from delivery.service import enqueue, new_delivery
from kernel import clock
from tests.graphql_client import gql, gql_data
from tests.reports.helpers import db_id, demo_sign_in, resident
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import CREATE, UPDATE, admin_token, create_endpoint, registered
from webhooks.events import global_id

pytestmark = pytest.mark.usefixtures("demo")

LIST = """
query($first: Int) {
  webhookEndpoints(first: $first) {
    nodes { id url eventTypes enabled
            deliveries(first: 10) { nodes { id webhookId eventType status attempts lastError createdAt finishedAt
                                            attemptLog { at succeeded statusCode error durationMs } } } }
  }
}"""

REPLAY = """
mutation($input: WebhookDeliveryReplayInput!) {
  webhookDeliveryReplay(input: $input) { delivery { id status attempts finishedAt webhookId } userErrors { code field message } }
}"""

DELETE = """
mutation($input: WebhookEndpointDeleteInput!) {
  webhookEndpointDelete(input: $input) { deletedId userErrors { code field message } }
}"""


async def test_an_admin_registers_and_sees_the_secret_once(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await admin_token(client)
    created = await create_endpoint(
        client,
        token,
        f"{receiver.url}/in",
        description="City GIS",
        eventTypes=["case.submitted", "case.resolved"],
        departmentCode="police-west",
        categoryCode="noise.construction",
    )
    assert created["userErrors"] == []
    endpoint = created["endpoint"]
    assert endpoint["eventTypes"] == ["case.resolved", "case.submitted"]
    assert endpoint["department"] == {"code": "police-west"}
    assert endpoint["category"] == {"code": "noise.construction"}
    assert endpoint["enabled"] is True
    assert created["secret"].startswith("whsec_")
    # The secret is not readable afterwards: no field of the endpoint holds it.
    listed = await gql_data(client, LIST, {"first": 5}, token=token)
    (node,) = listed["webhookEndpoints"]["nodes"]
    assert created["secret"] not in str(listed)
    assert node["id"] == endpoint["id"]


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"url": "ftp://example.org/x"}, "url", "INVALID"),
        ({"url": "https://10.0.0.8/x"}, "url", "INVALID"),
        ({"url": "x" * 2049}, "url", "INVALID"),
        ({"eventTypes": ["case.exploded"]}, "eventTypes", "INVALID"),
        ({"departmentCode": "nowhere"}, "departmentCode", "INVALID"),
        ({"categoryCode": "no.such"}, "categoryCode", "INVALID"),
        ({"description": "d" * 300}, "description", "INVALID"),
    ],
)
async def test_bad_input_answers_typed_user_errors(
    client: httpx.AsyncClient, receiver: Receiver, changes: dict[str, object], field: str, code: str
) -> None:
    token = await admin_token(client)
    body = await gql(client, CREATE, {"input": {"url": receiver.url, **changes}}, token=token)
    assert "errors" not in body, body
    result = body["data"]["webhookEndpointCreate"]
    assert result["endpoint"] is None and result["secret"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, ["input", field])]


async def test_only_admins(client: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    gid = global_id("WebhookEndpoint", endpoint_id)
    resident_token, _ = await resident(client)
    for token in (
        resident_token,
        await demo_sign_in(client, "dispatcher"),
        await demo_sign_in(client, "eco.staff"),
    ):
        refused = await gql(client, CREATE, {"input": {"url": receiver.url}}, token=token)
        assert refused["data"]["webhookEndpointCreate"]["userErrors"][0]["code"] == "FORBIDDEN"
        update = await gql(client, UPDATE, {"input": {"id": gid, "enabled": False}}, token=token)
        assert update["data"]["webhookEndpointUpdate"]["userErrors"][0]["code"] == "FORBIDDEN"
        listed = await gql(client, LIST, {"first": 5}, token=token)
        assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        node = await gql_data(client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid}, token=token)
        assert node["node"] is None
    anonymous = await gql(client, LIST, {"first": 5})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    admin = await gql_data(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid}, token=await admin_token(client)
    )
    assert admin["node"] == {"id": gid}


async def test_update_disable_reenable_and_delete(client: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    gid = global_id("WebhookEndpoint", endpoint_id)
    token = await admin_token(client)
    await enqueue(new_delivery("webhook", endpoint_id, {"type": "case.submitted", "data": {}}))
    off = await gql_data(client, UPDATE, {"input": {"id": gid, "enabled": False}}, token=token)
    assert off["webhookEndpointUpdate"]["endpoint"]["enabled"] is False
    assert off["webhookEndpointUpdate"]["endpoint"]["disabledReason"] == "Disabled by an admin."
    assert await Delivery.filter(status=DeliveryStatus.CANCELLED).count() == 1  # pending ones are cancelled

    changed = await gql_data(
        client,
        UPDATE,
        {
            "input": {
                "id": gid,
                "enabled": True,
                "eventTypes": ["case.confirmed"],
                "departmentCode": "police-west",
                "url": receiver.url + "/v2",
            }
        },
        token=token,
    )
    endpoint = changed["webhookEndpointUpdate"]["endpoint"]
    assert endpoint["enabled"] is True and endpoint["disabledReason"] is None
    assert endpoint["consecutiveFailures"] == 0
    assert endpoint["url"].endswith("/v2") and endpoint["department"] == {"code": "police-west"}
    cleared = await gql_data(client, UPDATE, {"input": {"id": gid, "departmentCode": ""}}, token=token)
    assert cleared["webhookEndpointUpdate"]["endpoint"]["department"] is None

    missing = await gql_data(
        client, UPDATE, {"input": {"id": global_id("WebhookEndpoint", 999999)}}, token=token
    )
    assert missing["webhookEndpointUpdate"]["userErrors"][0]["code"] == "NOT_FOUND"
    wrong = await gql_data(client, UPDATE, {"input": {"id": global_id("Case", endpoint_id)}}, token=token)
    assert wrong["webhookEndpointUpdate"]["userErrors"][0] == {
        "code": "INVALID",
        "field": ["input", "id"],
        "message": "Not the id of a WebhookEndpoint.",
    }

    deleted = await gql_data(client, DELETE, {"input": {"id": gid}}, token=token)
    assert deleted["webhookEndpointDelete"] == {"deletedId": gid, "userErrors": []}
    assert (await gql_data(client, LIST, {"first": 5}, token=token))["webhookEndpoints"]["nodes"] == []


async def test_rotation_input_is_checked(client: httpx.AsyncClient, receiver: Receiver) -> None:
    from tests.webhooks.helpers import ROTATE

    endpoint_id, _ = await registered(client, receiver.url)
    token = await admin_token(client)
    body = await gql_data(
        client,
        ROTATE,
        {"input": {"id": global_id("WebhookEndpoint", endpoint_id), "overlapHours": 1000}},
        token=token,
    )
    result = body["webhookEndpointRotateSecret"]
    assert result["secret"] is None
    assert result["userErrors"][0]["field"] == ["input", "overlapHours"]


async def test_the_delivery_log_and_replay(client: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint_id, _ = await registered(client, receiver.url)
    token = await admin_token(client)
    await enqueue(new_delivery("webhook", endpoint_id, {"type": "case.submitted", "data": {}}))
    delivery = await Delivery.get(target_id=endpoint_id)
    gid = global_id("WebhookDelivery", delivery.id)
    pending = await gql_data(client, REPLAY, {"input": {"id": gid}}, token=token)
    assert pending["webhookDeliveryReplay"]["userErrors"][0]["code"] == "CONFLICT"

    # As the worker records it: two attempts, then given up.
    now = clock.now()
    await DeliveryAttempt.create(
        delivery_id=delivery.id,
        at=now - timedelta(minutes=1),
        succeeded=False,
        status_code=500,
        error="The receiver answered 500.",
        duration_ms=12,
    )
    await DeliveryAttempt.create(
        delivery_id=delivery.id,
        at=now,
        succeeded=False,
        status_code=None,
        error="No answer within 10 s.",
        duration_ms=10000,
    )
    await Delivery.filter(id=delivery.id).update(
        status=DeliveryStatus.DEAD, attempts=2, finished_at=now, last_error="No answer within 10 s."
    )
    listed = await gql_data(client, LIST, {"first": 5}, token=token)
    (row,) = listed["webhookEndpoints"]["nodes"][0]["deliveries"]["nodes"]
    assert row["id"] == gid and row["webhookId"] == f"msg_{delivery.id}"
    assert row["eventType"] == "case.submitted" and row["status"] == "DEAD" and row["attempts"] == 2
    assert row["lastError"] == "No answer within 10 s." and row["finishedAt"] is not None
    assert [(a["statusCode"], a["durationMs"], a["succeeded"]) for a in row["attemptLog"]] == [
        (500, 12, False),
        (None, 10000, False),
    ]

    replayed = await gql_data(client, REPLAY, {"input": {"id": gid}}, token=token)
    again = replayed["webhookDeliveryReplay"]
    assert again["userErrors"] == []
    assert again["delivery"] == {
        "id": gid,
        "status": "PENDING",
        "attempts": 0,
        "finishedAt": None,
        "webhookId": f"msg_{delivery.id}",
    }
    assert (await Delivery.get(id=delivery.id)).next_attempt_at <= clock.now()

    resident_token, _ = await resident(client)
    refused = await gql_data(client, REPLAY, {"input": {"id": gid}}, token=resident_token)
    assert refused["webhookDeliveryReplay"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert db_id(gid) == delivery.id
