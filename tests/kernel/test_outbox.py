"""The outbox announces a change if and only if it committed, in order, once per relay pass; on
PostgreSQL two relays at once never publish the same row."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tortoise.context import TortoiseContext

from kernel import clock
from kernel.database import atomic
from kernel.events import LocalEventBus, Message
from kernel.outbox import OutboxEvent, change, emit, relay_pending
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
