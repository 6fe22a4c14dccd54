"""Pruning: the outbox and the delivery log keep what is still needed, and history for a while."""

from __future__ import annotations

from dataclasses import dataclass

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
    outbox = 0
    while True:
        ids = await (
            OutboxEvent.filter(
                published_at__not_isnull=True,
                planned_at__not_isnull=True,
                created_at__lt=now - config.outbox_retention,
            )
            .order_by("id")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            break
        outbox += await OutboxEvent.filter(id__in=ids).delete()
    deliveries = 0
    while True:
        ids = await (
            Delivery.filter(
                status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.CANCELLED],
                finished_at__lt=now - config.delivered_retention,
            )
            .order_by("id")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            break
        await DeliveryAttempt.filter(delivery_id__in=ids).delete()
        deliveries += await Delivery.filter(id__in=ids).delete()
    return Pruned(outbox, deliveries)
