"""Creating deliveries: planners return them, and senders outside the outbox (one-time codes) enqueue
them directly. Either way they are written in the caller's transaction and picked up by a worker."""

from __future__ import annotations

from typing import Any, Protocol

from delivery.models import Delivery
from kernel import clock


class Wakeable(Protocol):
    def wake(self) -> None: ...


# Workers running in this process, nudged when a delivery is written here (instead of waiting a poll).
workers_here: set[Wakeable] = set()


def new_delivery(
    channel: str,
    target_id: int,
    payload: dict[str, Any],
    *,
    event_id: int | None = None,
    ordering_key: str = "",
) -> Delivery:
    """An unsaved delivery, due now."""
    now = clock.now()
    return Delivery(
        channel=channel,
        target_id=target_id,
        event_id=event_id,
        ordering_key=ordering_key,
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )


async def enqueue(*deliveries: Delivery) -> None:
    """Write `deliveries` (in the caller's transaction, if any) and nudge this process's workers."""
    if not deliveries:
        return
    await Delivery.bulk_create(list(deliveries))
    for worker in workers_here:
        worker.wake()
