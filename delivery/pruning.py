"""Pruning: the outbox and the delivery log keep what is still needed, and history for a while."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tortoise.queryset import QuerySet

from delivery.config import DeliveryConfig
from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from kernel import clock
from kernel.outbox import OutboxEvent


@dataclass(frozen=True)
class Pruned:
    outbox: int
    deliveries: int

    def __str__(self) -> str:
        return f"{self.outbox} outbox rows, {self.deliveries} finished deliveries"


async def prune(config: DeliveryConfig, batch: int = 1000) -> Pruned:
    """Delete, in batches of `batch`, outbox rows both published and planned and older than the
    outbox retention, and delivered or cancelled deliveries (with their attempts) finished before the
    delivered retention. Pending and dead deliveries are kept. Safe in several processes at once."""
    now = clock.now()
    expired_outbox = OutboxEvent.filter(
        published_at__not_isnull=True,
        planned_at__not_isnull=True,
        created_at__lt=now - config.outbox_retention,
    )
    finished = Delivery.filter(
        status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.CANCELLED],
        finished_at__lt=now - config.delivered_retention,
    )

    async def delete_outbox(ids: list[Any]) -> int:
        return await OutboxEvent.filter(id__in=ids).delete()

    async def delete_deliveries(ids: list[Any]) -> int:
        await DeliveryAttempt.filter(delivery_id__in=ids).delete()
        return await Delivery.filter(id__in=ids).delete()

    return Pruned(
        await _in_batches(expired_outbox, batch, delete_outbox),
        await _in_batches(finished, batch, delete_deliveries),
    )


async def _in_batches(
    expired: QuerySet[Any], batch: int, delete: Callable[[list[Any]], Awaitable[int]]
) -> int:
    """Delete what `expired` selects, `batch` rows at a time (no long lock, no huge statement)."""
    deleted = 0
    while ids := await expired.order_by("id").limit(batch).values_list("id", flat=True):
        deleted += await delete(list(ids))
    return deleted
