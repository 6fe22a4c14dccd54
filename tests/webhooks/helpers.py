"""Shared steps of the webhook tests: registering endpoints as an admin, planning and sending."""

from __future__ import annotations

from typing import Any

import httpx

from delivery.models import Delivery
from delivery.service import enqueue
from kernel.outbox import OutboxEvent
from tests.graphql_client import gql
from tests.reports.helpers import db_id, demo_sign_in
from webhooks.planning import plan_webhooks

CREATE = """
mutation($input: WebhookEndpointCreateInput!) {
  webhookEndpointCreate(input: $input) {
    endpoint { id url description eventTypes enabled disabledReason consecutiveFailures
               department { code } category { code } }
    secret
    userErrors { code field message }
  }
}"""

UPDATE = """
mutation($input: WebhookEndpointUpdateInput!) {
  webhookEndpointUpdate(input: $input) {
    endpoint { id url eventTypes enabled disabledReason consecutiveFailures department { code } category { code } }
    userErrors { code field message }
  }
}"""

ROTATE = """
mutation($input: WebhookEndpointRotateSecretInput!) {
  webhookEndpointRotateSecret(input: $input) {
    endpoint { id previousSecretExpiresAt }
    secret
    userErrors { code field message }
  }
}"""


async def admin_token(client: httpx.AsyncClient) -> str:
    return await demo_sign_in(client, "admin")


async def create_endpoint(client: httpx.AsyncClient, token: str, url: str, **extra: Any) -> dict[str, Any]:
    body = await gql(client, CREATE, {"input": {"url": url, **extra}}, token=token)
    assert "errors" not in body, body
    return body["data"]["webhookEndpointCreate"]


async def registered(client: httpx.AsyncClient, url: str, **extra: Any) -> tuple[int, str]:
    """(endpoint id, secret) of a new endpoint, registered by the demo admin."""
    result = await create_endpoint(client, await admin_token(client), url, **extra)
    assert result["userErrors"] == [], result["userErrors"]
    return db_id(result["endpoint"]["id"]), result["secret"]


async def plan_all(after_id: int = 0) -> list[Delivery]:
    """Plan every outbox row after `after_id` (as the worker's planning pass would) and save the
    deliveries; returns them in id order."""
    events = await OutboxEvent.filter(id__gt=after_id).order_by("id")
    for event in events:
        await enqueue(*await plan_webhooks(event))
    return await Delivery.filter(channel="webhook", event_id__gt=after_id).order_by("id")


async def last_event_id() -> int:
    last = await OutboxEvent.all().order_by("-id").first()
    return last.id if last else 0
