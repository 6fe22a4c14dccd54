"""Both event buses deliver what is published after subscribing, per channel, across instances; the
Redis bus degrades to one process while Redis is down and comes back when it returns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kernel.events import EventBus, LocalEventBus, Message
from server.redis_bus import RedisEventBus
from tests.conftest import REDIS_URL


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


class RedisServer:
    """A redis-server of the test's own, to stop and start again under the buses."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is required under CI")
            pytest.skip("no redis-server binary")
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._spawn()
        await self._ready()

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )

    async def _ready(self) -> None:
        probe = Redis.from_url(self.url)
        try:
            for _ in range(100):
                with contextlib.suppress(RedisError, OSError):
                    if await probe.ping():
                        return
                await asyncio.sleep(0.05)
        finally:
            await probe.aclose()
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


class Heard:
    """Everything a subscription receives, read in the background (cancelling a read would end it)."""

    def __init__(self, messages: AsyncIterator[Message]) -> None:
        self.messages: list[Message] = []
        self.task = asyncio.create_task(self._read(messages))

    async def _read(self, messages: AsyncIterator[Message]) -> None:
        async for message in messages:
            self.messages.append(message)

    async def then(self, *expected: Message) -> None:
        """Wait until exactly `expected` has been heard so far."""
        for _ in range(100):
            if self.messages == list(expected):
                return
            await asyncio.sleep(0.05)
        assert self.messages == list(expected)


async def test_without_redis_live_updates_reach_this_process_and_come_back_across_when_it_returns() -> None:
    redis = RedisServer()
    await redis.start()
    here, there = (RedisEventBus(redis.url, retry_seconds=0.1) for _ in range(2))
    try:
        async with here.subscribe("case:1") as on_here, there.subscribe("case:1") as on_there:
            mine, theirs = Heard(on_here), Heard(on_there)
            await here.publish("case:1", {"n": 1})
            await mine.then({"n": 1})
            await theirs.then({"n": 1})

            redis.stop()
            await here.publish("case:1", {"n": 2})  # no error: this process's subscribers still hear it
            await mine.then({"n": 1}, {"n": 2})
            await asyncio.sleep(0.3)
            await theirs.then({"n": 1})

            await redis.start()
            for _ in range(100):  # both listeners subscribe again
                subscribers = await there.redis.execute_command("PUBSUB", "NUMSUB", "envcase:case:1")
                if subscribers == ["envcase:case:1", 2]:
                    break
                await asyncio.sleep(0.05)
            await here.publish("case:1", {"n": 3})
            await theirs.then({"n": 1}, {"n": 3})
            await mine.then({"n": 1}, {"n": 2}, {"n": 3})
            mine.task.cancel()
            theirs.task.cancel()
    finally:
        await here.close()
        await there.close()
        redis.stop()
