"""Who sees which notifications: only their owner, always."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.queryset import QuerySet

from identity.service import Principal
from notifications.models import Notification


def visible_notifications(principal: Principal | None, rows: Sequence[Notification]) -> list[Notification]:
    if principal is None:
        return []
    return [row for row in rows if row.user_id == principal.user.id]  # type: ignore[attr-defined]


def own_notifications(principal: Principal, *, unread_only: bool = False) -> QuerySet[Notification]:
    rows = Notification.filter(user_id=principal.user.id)
    return rows.filter(read_at=None) if unread_only else rows
