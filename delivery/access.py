"""Who may see deliveries: admins only (the log names targets and holds rendered payloads)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.queryset import QuerySet

from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from identity.models import Role
from identity.service import Principal


def is_admin(principal: Principal | None) -> bool:
    return principal is not None and principal.role == Role.ADMIN


def visible_deliveries(principal: Principal | None, rows: Sequence[Delivery]) -> Sequence[Delivery]:
    return rows if is_admin(principal) else []


def deliveries(
    status: DeliveryStatus | None = None, channel: str | None = None, target_id: int | None = None
) -> QuerySet[Delivery]:
    """The delivery log (callers check who may see it first), optionally of one status, channel and
    target (a webhook endpoint's own log: channel and target)."""
    rows = Delivery.all()
    if target_id is not None:
        rows = rows.filter(target_id=target_id)
    if status is not None:
        rows = rows.filter(status=status)
    if channel is not None:
        rows = rows.filter(channel=channel)
    return rows


async def attempts_of(delivery_ids: list[int]) -> list[list[DeliveryAttempt]]:
    """Each delivery's attempts, oldest first, in the order of `delivery_ids` (one query for a page)."""
    by_delivery: dict[int, list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
    for attempt in await DeliveryAttempt.filter(delivery_id__in=delivery_ids).order_by("id"):
        by_delivery[attempt.delivery_id].append(attempt)  # type: ignore[attr-defined]
    return [by_delivery[i] for i in delivery_ids]
