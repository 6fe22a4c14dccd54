"""The caller's own inbox and preferences."""

from __future__ import annotations

import strawberry

from notifications import access, service
from schema.context import Info
from schema.notifications.types import NotificationNode, NotificationPreferences
from schema.pagination import Connection, keyset_page


@strawberry.type
class NotificationsQuery:
    @strawberry.field(description="The caller's in-app inbox, newest first.")
    async def notifications(
        self, info: Info, first: int = 20, after: str | None = None, unread_only: bool = False
    ) -> Connection[NotificationNode]:
        principal = info.context.require_principal()
        return await keyset_page(
            access.own_notifications(principal, unread_only=unread_only),
            order=["-id"],
            first=first,
            after=after,
            to_node=NotificationNode.from_model,
        )

    @strawberry.field(description="How many of the caller's notifications are unread.")
    async def unread_notification_count(self, info: Info) -> int:
        return await service.unread_count(info.context.require_principal().user.id)

    @strawberry.field(description="How the caller wants to be told (the defaults until they choose).")
    async def notification_preferences(self, info: Info) -> NotificationPreferences:
        user = info.context.require_principal().user
        return NotificationPreferences.from_model(await service.preferences_of(user.id))
