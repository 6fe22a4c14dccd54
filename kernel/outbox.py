"""The outbox: every change others must hear about is one row, written in the transaction that makes
the change, so a change is announced if and only if it committed.

Domains write rows (`change`, then `emit` inside their transaction) and never publish themselves.
Listeners in the process hear of the rows once their transaction commits (`listeners`): the relay
(`OutboxRelay`, one per server process) publishes them to the live-update bus from memory at once, and
marks them published in batches, so a change costs its relay no read and no write transaction of
its own; the delivery worker plans them. Rows no process published at commit (written by a command,
or by a process that died first) are found by polling (`relay_pending`) once they are `settle` old: on
PostgreSQL claimed FOR UPDATE SKIP LOCKED, so several processes poll side by side and never take the
same row. Delivery is at least once: a row published and not yet marked when its process dies is
published again, with the same id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from tortoise import fields
from tortoise.connection import connections
from tortoise.indexes import Index
from tortoise.models import Model

from kernel import clock
from kernel.database import after_commit, atomic
from kernel.events import EventBus, Message

log = logging.getLogger("kernel.outbox")


class OutboxListener(Protocol):
    def committed(self, rows: Sequence[OutboxEvent]) -> None:
        """`rows` (with their ids) just committed; called in the writer's task, so it must not block."""
        ...


# The relays and delivery workers running in this process.
listeners: set[OutboxListener] = set()

# A change of at most this many rows inserts them one by one, so their ids are known at commit and the
# listeners get them from memory; a larger batch (a deadline sweep's) is left to polling.
DIRECT_ROWS = 8


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
    """Write `rows` in the current transaction; this process's listeners hear of them at its commit."""
    if not rows:
        return
    if len(rows) > DIRECT_ROWS:
        await OutboxEvent.bulk_create(list(rows))
        return
    for row in rows:
        await row.save()
    after_commit(lambda: _tell_listeners(rows))


def _tell_listeners(rows: Sequence[OutboxEvent]) -> None:
    for listener in list(listeners):
        listener.committed(rows)


def message_of(row: OutboxEvent) -> Message:
    return {"id": row.id, "kind": row.kind, row.subject: row.subject_id, **row.data}


async def relay_pending(
    bus: EventBus, limit: int = 200, settle: timedelta = timedelta(0), skip: Sequence[int] = ()
) -> int:
    """Publish the oldest unpublished rows at least `settle` old (up to `limit`, none of `skip`) and
    mark them; returns how many."""
    pending = OutboxEvent.filter(published_at=None, created_at__lte=clock.now() - settle)
    if skip:
        pending = pending.exclude(id__in=list(skip))
    pending = pending.order_by("id").limit(limit)
    if not await pending.exists():  # the usual answer, without a transaction
        return 0
    if not connections.get("default").capabilities.support_for_update:
        # SQLite: no transaction around read-then-write, whose lock upgrade can fail a writer at once
        # ("database is locked"); the single UPDATE waits its turn like any write.
        rows = await pending
        await _publish(bus, rows)
        await _mark_published([row.id for row in rows])
        return len(rows)
    async with atomic():
        rows = await pending.select_for_update(skip_locked=True)
        await _publish(bus, rows)
        await _mark_published([row.id for row in rows])
        return len(rows)


async def _publish(bus: EventBus, rows: Sequence[OutboxEvent]) -> None:
    for row in rows:
        message = message_of(row)
        for channel in row.channels:
            await bus.publish(channel, message)


async def _mark_published(ids: list[int]) -> None:
    if ids:
        await OutboxEvent.filter(id__in=ids).update(published_at=clock.now())


class OutboxRelay:
    """Publishes this process's committed rows at once, in commit order, and marks them published every
    `interval`; then polls for rows nobody published once they are `settle` old."""

    BATCH = 200

    def __init__(
        self, bus: EventBus, interval: float = 0.25, settle: timedelta = timedelta(seconds=2)
    ) -> None:
        self.bus = bus
        self.interval = interval
        self.settle = settle
        self._committed: asyncio.Queue[Sequence[OutboxEvent]] = asyncio.Queue()
        self._published: list[int] = []  # published, not yet marked

    def committed(self, rows: Sequence[OutboxEvent]) -> None:
        self._committed.put_nowait(rows)

    async def run(self) -> None:
        listeners.add(self)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._publish_committed)
                await self._poll()
        finally:
            listeners.discard(self)
            with anyio.CancelScope(shield=True):  # a restart would publish them again
                await self._mark_safely()

    async def _publish_committed(self) -> None:
        while True:
            rows = await self._committed.get()
            try:
                await _publish(self.bus, rows)
            except Exception:  # the bus is down: the rows stay unpublished, for polling to retry
                log.exception("outbox relay could not publish")
                continue
            self._published.extend(row.id for row in rows)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._mark_safely()
            while await self._relay_safely() >= self.BATCH:  # a backlog: drain it
                pass

    async def _mark_safely(self) -> None:
        marking, self._published = self._published, []
        try:
            await _mark_published(marking)
        except Exception:  # a lost connection: mark them next time
            log.exception("outbox relay could not mark rows published")
            self._published = marking + self._published

    async def _relay_safely(self) -> int:
        try:
            return await relay_pending(self.bus, self.BATCH, self.settle, skip=self._published)
        except Exception:  # a lost connection or a bus error: the rows stay pending for the next pass
            log.exception("outbox relay failed")
            return 0
