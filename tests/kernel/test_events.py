"""Both event buses deliver what is published after subscribing, per channel, across instances."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kernel.events import EventBus, LocalEventBus
from server.redis_bus import RedisEventBus

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


async def _redis_available() -> bool:
    bus = RedisEventBus(REDIS_URL)
    try:
        await bus.redis.ping()
        return True
    except OSError:
        return False
    finally:
        await bus.close()


@pytest_asyncio.fixture(params=["local", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[EventBus, EventBus]]:
    """A publisher and a subscriber bus: one shared local bus, or two Redis clients (two 'processes')."""
    if request.param == "local":
        bus = LocalEventBus()
        yield bus, bus
        return
    if not await _redis_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex}:"
    publisher, subscriber = RedisEventBus(REDIS_URL, prefix), RedisEventBus(REDIS_URL, prefix)
    yield publisher, subscriber
    await publisher.close()
    await subscriber.close()


async def test_subscriber_receives_its_channels_only(buses: tuple[EventBus, EventBus]) -> None:
    publisher, subscriber = buses
    async with subscriber.subscribe("case:1", "queue:eco") as messages:
        await asyncio.sleep(0.05)  # Redis confirms the subscription asynchronously
        await publisher.publish("case:2", {"n": 0})
        await publisher.publish("case:1", {"n": 1})
        await publisher.publish("queue:eco", {"n": 2})
        received = [await asyncio.wait_for(anext(messages), 2) for _ in range(2)]
    assert received == [{"n": 1}, {"n": 2}]


async def test_local_bus_drops_oldest_for_a_slow_subscriber() -> None:
    bus = LocalEventBus(queue_size=2)
    async with bus.subscribe("c") as messages:
        for n in range(3):
            await bus.publish("c", {"n": n})
        assert [await anext(messages), await anext(messages)] == [{"n": 1}, {"n": 2}]
    assert bus.queues == {}
