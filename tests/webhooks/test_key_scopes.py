"""Webhook management by a service account's key over HTTP: `webhooks:manage` runs exactly the webhook
admin operations (and nothing else beyond its other scopes); other keys get the refusal a non-admin gets;
a revoked key is unauthenticated."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from identity.models import ServiceAccount
from tests.graphql_client import gql
from tests.open311.helpers import make_key
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import CREATE, ROTATE, UPDATE, admin_token
from tests.webhooks.test_admin_api import DELETE, LIST, REPLAY
from webhooks.events import global_id
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.usefixtures("demo")

REVOKE = "mutation($input: ServiceAccountRevokeInput!) { serviceAccountRevoke(input: $input) { userErrors { code } } }"


def refused(body: dict[str, Any]) -> str:
    """The code of a request refused before it ran (no data)."""
    assert body.get("data") is None, body
    return str(body["errors"][0]["extensions"]["code"])


async def test_a_webhooks_key_runs_the_webhook_admin_operations(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    key, account_id = await make_key(client, "webhooks:manage")
    created = (await gql(client, CREATE, {"input": {"url": receiver.url}}, token=key))["data"]
    created = created["webhookEndpointCreate"]
    assert created["userErrors"] == [] and created["secret"]
    gid = created["endpoint"]["id"]
    endpoint = await WebhookEndpoint.get()
    account = await ServiceAccount.get(user_id=endpoint.created_by_id)  # created as the key's own account
    assert account.last_used_at is not None
    listed = await gql(client, LIST, {"first": 5}, token=key)
    assert [n["id"] for n in listed["data"]["webhookEndpoints"]["nodes"]] == [gid]
    update = await gql(client, UPDATE, {"input": {"id": gid, "enabled": False}}, token=key)
    assert update["data"]["webhookEndpointUpdate"]["userErrors"] == []
    assert update["data"]["webhookEndpointUpdate"]["endpoint"]["enabled"] is False
    rotated = await gql(client, ROTATE, {"input": {"id": gid, "overlapHours": 1}}, token=key)
    assert rotated["data"]["webhookEndpointRotateSecret"]["secret"] not in (None, created["secret"])
    missing = global_id("WebhookDelivery", 999_999)
    replay = await gql(client, REPLAY, {"input": {"id": missing}}, token=key)
    assert [e["code"] for e in replay["data"]["webhookDeliveryReplay"]["userErrors"]] == ["NOT_FOUND"]
    deleted = await gql(client, DELETE, {"input": {"id": gid}}, token=key)
    assert deleted["data"]["webhookEndpointDelete"] == {"deletedId": gid, "userErrors": []}

    # Nothing beyond: no other query (it has no graphql:read), no other mutation.
    assert refused(await gql(client, "{ me { id } }", token=key)) == "FORBIDDEN"
    mutation = 'mutation { serviceAccountCreate(input: {name: "x", scopes: ["graphql:read"]}) { key } }'
    assert refused(await gql(client, mutation, token=key)) == "FORBIDDEN"
    assert await ServiceAccount.all().count() == 1

    admin = await admin_token(client)
    await gql(client, REVOKE, {"input": {"id": account_id}}, token=admin)
    gone = await client.post("/graphql", json={"query": LIST}, headers={"Authorization": f"Bearer {key}"})
    assert gone.status_code == 401 and gone.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_keys_without_the_scope_are_refused(client: httpx.AsyncClient, receiver: Receiver) -> None:
    reader, _ = await make_key(client, "graphql:read")
    # A read key may query, but the webhook rules refuse it as they refuse a non-admin.
    listed = await gql(client, LIST, {"first": 5}, token=reader)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # ... and it still runs no mutation at all.
    assert refused(await gql(client, CREATE, {"input": {"url": receiver.url}}, token=reader)) == "FORBIDDEN"
    exporter, _ = await make_key(client, "export:read")
    assert refused(await gql(client, CREATE, {"input": {"url": receiver.url}}, token=exporter)) == "FORBIDDEN"
    assert refused(await gql(client, LIST, {"first": 5}, token=exporter)) == "FORBIDDEN"
    writer, _ = await make_key(client, "open311:write")
    answer = await client.post(
        "/graphql", json={"query": LIST}, headers={"Authorization": f"Bearer {writer}"}
    )
    assert answer.status_code == 403 and answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await WebhookEndpoint.all().count() == 0
