"""The outbox: every change others must hear about is one row, written in the transaction that makes
the change, so a change is announced if and only if it committed.

Domains write rows (`change`, then `emit` inside their transaction) and never publish themselves. A
relay (`relay_pending`, looped by `OutboxRelay` in each server process) reads committed rows in order and
hands them to the live-update bus. On PostgreSQL a batch is claimed with FOR UPDATE SKIP LOCKED, so
several processes relay side by side and never the same row; on SQLite (one process by design) the
single relay does it. Delivery is at least once: a relay that dies after publishing and before its
commit leaves the rows to be published again, with the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from tortoise import fields
from tortoise.connection import connections
from tortoise.indexes import Index
from tortoise.models import Model

from kernel import clock
from kernel.database import atomic
from kernel.events import EventBus, Message

log = logging.getLogger("kernel.outbox")

# Relays in this process to nudge when a change is written here (see OutboxRelay.wake).
_relays: set[OutboxRelay] = set()


class OutboxEvent(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64, description="What happened: a case step, submit, join, rated...")
    subject = fields.CharField(max_length=32, description="What it happened to: 'case', 'patrol'")
    subject_id = fields.BigIntField()
    channels: Any = fields.JSONField(default=list, description="The live-update channels that hear of it")
    data: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)
    planned_at = fields.DatetimeField(null=True, description="When its deliveries were planned")

    class Meta:
        table = "outbox"
        table_description = "Committed changes, in order, waiting to be (or already) relayed"
        indexes = [Index(fields=["published_at", "id"]), Index(fields=["planned_at", "id"])]


def change(
    kind: str, subject: str, subject_id: int, channels: list[str], at: datetime, **data: Any
) -> OutboxEvent:
    """An unsaved outbox row; `emit` writes it (in the caller's transaction)."""
    return OutboxEvent(
        kind=kind, subject=subject, subject_id=subject_id, channels=channels, data=data, created_at=at
    )


async def emit(*rows: OutboxEvent) -> None:
    """Write `rows` in the current transaction, and nudge this process's relays."""
    if not rows:
        return
    await OutboxEvent.bulk_create(list(rows))
    for relay in _relays:
        relay.wake()


def message_of(row: OutboxEvent) -> Message:
    return {"id": row.id, "kind": row.kind, row.subject: row.subject_id, **row.data}


async def relay_pending(bus: EventBus, limit: int = 200) -> int:
    """Publish the oldest unpublished rows (up to `limit`) and mark them; returns how many."""
    pending = OutboxEvent.filter(published_at=None).order_by("id").limit(limit)
    if not await pending.exists():  # the usual answer, without a transaction
        return 0
    if not connections.get("default").capabilities.support_for_update:
        # SQLite: no transaction around read-then-write, whose lock upgrade can fail a writer at once
        # ("database is locked"); the single UPDATE waits its turn like any write.
        return await _publish(bus, await pending)
    async with atomic():
        return await _publish(bus, await pending.select_for_update(skip_locked=True))


async def _publish(bus: EventBus, rows: list[OutboxEvent]) -> int:
    """Publish `rows` in order and mark them published."""
    if not rows:
        return 0
    for row in rows:
        message = message_of(row)
        for channel in row.channels:
            await bus.publish(channel, message)
    await OutboxEvent.filter(id__in=[row.id for row in rows]).update(published_at=clock.now())
    return len(rows)


class OutboxRelay:
    """Relays in the background: at once when this process wrote a change (and again shortly, for the
    writer's commit to land), otherwise every `interval` seconds for changes other processes wrote."""

    # After a nudge, look again this much later each time: the writer may not have committed yet.
    FOLLOW_UPS = (0.0, 0.005, 0.02, 0.1)

    def __init__(self, bus: EventBus, interval: float = 0.25) -> None:
        self.bus = bus
        self.interval = interval
        self._nudged = asyncio.Event()

    def wake(self) -> None:
        self._nudged.set()

    async def run(self) -> None:
        _relays.add(self)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.interval)
                self._nudged.clear()
                for delay in self.FOLLOW_UPS:
                    await asyncio.sleep(delay)
                    await self._relay_safely()
                while await self._relay_safely() >= 200:  # a backlog: drain it
                    pass
        finally:
            _relays.discard(self)

    async def _relay_safely(self) -> int:
        try:
            return await relay_pending(self.bus)
        except Exception:  # a lost connection or a bus error: the rows stay pending for the next pass
            log.exception("outbox relay failed")
            return 0
