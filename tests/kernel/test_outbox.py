"""The outbox announces a change if and only if it committed, in order, once per relay pass; on
PostgreSQL two relays at once never publish the same row."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import anyio
import pytest
from tortoise.context import TortoiseContext

from kernel import clock
from kernel.database import atomic
from kernel.events import LocalEventBus, Message
from kernel.outbox import OutboxEvent, OutboxRelay, change, emit, relay_pending
from tests.conftest import IS_POSTGRES


class Gated(LocalEventBus):
    """A bus whose publishing waits for the test to open the gate (a relay caught mid-batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.published: list[Message] = []

    async def publish(self, channel: str, message: Message) -> None:
        self.entered.set()
        await self.gate.wait()
        self.published.append(message)


async def write(kind: str, *, fail: bool = False) -> None:
    with contextlib.suppress(RuntimeError):
        async with atomic():
            await emit(change(kind, "case", 7, ["case:7"], clock.now(), status="X"))
            if fail:
                raise RuntimeError("the change failed after its outbox row was written")


async def test_only_committed_changes_are_relayed_in_order_and_once(db: TortoiseContext) -> None:
    await write("accept")
    await write("start", fail=True)
    await write("resolve")
    bus = LocalEventBus()
    async with bus.subscribe("case:7") as messages:
        assert await relay_pending(bus) == 2
        received = [await asyncio.wait_for(anext(messages), 1) for _ in range(2)]
    assert [(m["kind"], m["case"], m["status"]) for m in received] == [
        ("accept", 7, "X"),
        ("resolve", 7, "X"),
    ]
    assert received[0]["id"] < received[1]["id"]  # a stable id, for receivers that drop duplicates
    assert await relay_pending(bus) == 0
    assert await OutboxEvent.filter(published_at=None).count() == 0


@pytest.mark.skipif(not IS_POSTGRES, reason="SKIP LOCKED claims are PostgreSQL's; SQLite runs one relay")
async def test_two_relays_never_publish_the_same_row(db: TortoiseContext) -> None:
    for kind in ("accept", "start"):
        await write(kind)
    slow, fast = Gated(), Gated()
    fast.gate.set()
    first = asyncio.create_task(relay_pending(slow))
    await asyncio.wait_for(slow.entered.wait(), 5)  # the first relay holds both rows, unpublished
    await write("resolve")
    assert await asyncio.wait_for(relay_pending(fast), 5) == 1  # skips the claimed rows: no wait
    slow.gate.set()
    assert await first == 2
    kinds = [m["kind"] for m in slow.published] + [m["kind"] for m in fast.published]
    assert sorted(kinds) == ["accept", "resolve", "start"]


async def test_a_running_relay_publishes_this_process_commits_at_once_and_marks_them(
    db: TortoiseContext,
) -> None:
    bus = LocalEventBus()
    relay = OutboxRelay(bus, interval=0.05, settle=timedelta(hours=1))  # polling finds nothing
    async with bus.subscribe("case:7") as messages, anyio.create_task_group() as tasks:
        tasks.start_soon(relay.run)
        await asyncio.sleep(0)
        await write("accept")
        await write("start", fail=True)
        with contextlib.suppress(RuntimeError):
            async with atomic():  # a savepoint rolled back inside a transaction that commits
                await write("merge", fail=True)
                await write("resolve")
        received = [await asyncio.wait_for(anext(messages), 2) for _ in range(2)]
        assert [m["kind"] for m in received] == ["accept", "resolve"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(messages), 0.2)
        for _ in range(100):  # marked published by the relay's next pass
            if not await OutboxEvent.filter(published_at=None).exists():
                break
            await asyncio.sleep(0.02)
        tasks.cancel_scope.cancel()
    assert await OutboxEvent.filter(published_at=None).count() == 0
    assert await relay_pending(bus) == 0  # nothing left for polling to publish twice


async def test_changes_no_process_published_are_polled_once_settled(db: TortoiseContext) -> None:
    await write("accept")  # no relay in this process: as `python -m server escalate` writes
    bus = LocalEventBus()
    assert await relay_pending(bus, settle=timedelta(minutes=1)) == 0  # maybe still being published
    async with bus.subscribe("case:7") as messages:
        assert await relay_pending(bus, settle=timedelta(0)) == 1
        assert (await asyncio.wait_for(anext(messages), 1))["kind"] == "accept"
