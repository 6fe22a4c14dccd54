"""Planning the outbox as the delivery worker would, and reading inboxes over GraphQL."""

from __future__ import annotations

from typing import Any

import httpx

from delivery.models import Delivery
from kernel import clock
from kernel.database import atomic
from kernel.outbox import OutboxEvent
from notifications.planner import plan_notifications
from tests.graphql_client import gql_data

INBOX = """query($unread: Boolean) {
  notifications(first: 50, unreadOnly: $unread) { nodes { id kind title body createdAt readAt case { id } } }
  unreadNotificationCount
}"""
PREFERENCES_UPDATE = """mutation($input: NotificationPreferencesUpdateInput!) {
  notificationPreferencesUpdate(input: $input) {
    preferences { language pushEnabled smsEnabled quietHours { from until } mutedKinds }
    userErrors { code field message }
  }
}"""
MARK_READ = """mutation($input: NotificationsMarkReadInput!) {
  notificationsMarkRead(input: $input) { unreadCount userErrors { code field message } }
}"""


async def plan_pending() -> list[Delivery]:
    """Plan every unplanned outbox row in order, in one transaction per row (the worker's job)."""
    planned: list[Delivery] = []
    for row in await OutboxEvent.filter(planned_at=None).order_by("id"):
        async with atomic():
            deliveries = list(await plan_notifications(row))
            if deliveries:
                await Delivery.bulk_create(deliveries)
            await OutboxEvent.filter(id=row.id).update(planned_at=clock.now())
        planned.extend(deliveries)
    return planned


async def inbox(client: httpx.AsyncClient, token: str, unread: bool = False) -> dict[str, Any]:
    data = await gql_data(client, INBOX, {"unread": unread}, token=token)
    return {"nodes": data["notifications"]["nodes"], "unread": data["unreadNotificationCount"]}


async def kinds(client: httpx.AsyncClient, token: str) -> list[str]:
    return sorted(n["kind"] for n in (await inbox(client, token))["nodes"])


async def set_preferences(client: httpx.AsyncClient, token: str, **values: Any) -> dict[str, Any]:
    data = await gql_data(client, PREFERENCES_UPDATE, {"input": values}, token=token)
    return data["notificationPreferencesUpdate"]


async def mark_read(client: httpx.AsyncClient, token: str, **values: Any) -> dict[str, Any]:
    return (await gql_data(client, MARK_READ, {"input": values}, token=token))["notificationsMarkRead"]
