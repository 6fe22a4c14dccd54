"""Creating deliveries: planners return them, and senders outside the outbox (one-time codes) enqueue
them directly. Either way they are written in the caller's transaction and picked up by a worker."""

from __future__ import annotations

from typing import Any, Protocol

from delivery.models import Delivery, DeliveryStatus
from kernel import clock
from kernel.database import after_commit
from kernel.errors import DomainError, ErrorCode


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
    after_commit(_wake_workers)


def _wake_workers() -> None:
    for worker in workers_here:
        worker.wake()


REPLAYABLE = (DeliveryStatus.DEAD, DeliveryStatus.CANCELLED)


async def replay(delivery: Delivery, replayable: tuple[DeliveryStatus, ...] = REPLAYABLE) -> Delivery:
    """Send a finished delivery again (by default a dead or cancelled one): the same row, so the same
    delivery id for receivers that drop duplicates, pending and due now, its attempt count back to 0
    (so it gets the full number of retries); its attempt log is kept. Anything else is a CONFLICT."""
    if delivery.status not in replayable:
        allowed = " or ".join(status.value for status in replayable)
        raise DomainError(
            ErrorCode.CONFLICT,
            f"Only a {allowed} delivery can be replayed; this one is {delivery.status.value}.",
            ["input", "id"],
        )
    now = clock.now()
    updated = await Delivery.filter(id=delivery.id, status__in=replayable).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        lease_until=None,
        finished_at=None,
        last_error=None,
    )
    if not updated:  # replayed (or removed) meanwhile
        raise DomainError(
            ErrorCode.CONFLICT, "The delivery changed meanwhile; read it again.", ["input", "id"]
        )
    await delivery.refresh_from_db()
    _wake_workers()
    return delivery
