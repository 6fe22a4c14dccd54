"""The event bus over Redis pub/sub, for several server processes or machines.

Each process holds one Redis subscription for all its subscribers: a listener task subscribes to the
channels they want and hands what arrives to a local bus, which fans it out. When Redis is
unreachable, a publish goes to this process's own subscribers instead, so live updates degrade to one
process (the outbox keeps every change either way), and the listener reconnects and subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from kernel.events import LocalEventBus, Message

log = logging.getLogger("server.redis_bus")

_UNREACHABLE = (RedisError, OSError)


class RedisEventBus:
    def __init__(
        self, url: str, prefix: str = "envcase:", retry_seconds: float = 1.0, poll_seconds: float = 0.1
    ) -> None:
        self.redis = Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.poll_seconds = poll_seconds  # how soon the listener takes up a new subscriber's channels
        self.local = LocalEventBus()
        self._wanted: Counter[str] = Counter()  # channel -> subscribers in this process
        self._subscribed: set[str] = set()  # what the Redis subscription holds now
        self._wants_changed = asyncio.Event()  # for the listener
        self._caught_up = asyncio.Event()  # for subscribers waiting for Redis to hold their channels
        self._listener: asyncio.Task[None] | None = None
        self._degraded = False
        self.listening = 0

    async def publish(self, channel: str, message: Message) -> None:
        try:
            await self.redis.publish(
                self.prefix + channel, json.dumps(message, separators=(",", ":"), default=str)
            )
        except _UNREACHABLE as exc:
            if not self._degraded:
                log.warning("Redis unreachable; live updates reach this process's subscribers only: %r", exc)
                self._degraded = True
            await self.local.publish(channel, message)
            return
        if self._degraded:
            log.warning("Redis reachable again; live updates reach every process")
            self._degraded = False

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[Message]]:
        async with self.local.subscribe(*channels) as messages:
            self._wanted.update(channels)
            self._wants_changed.set()
            if self._listener is None:
                self._listener = asyncio.create_task(self._listen())
            try:
                # Wait (briefly: Redis may be down) until Redis delivers these channels to us.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._until_subscribed(channels), 2)
                self.listening += 1
                try:
                    yield messages
                finally:
                    self.listening -= 1
            finally:
                self._wanted.subtract(channels)
                for channel in channels:
                    if self._wanted[channel] <= 0:
                        del self._wanted[channel]
                self._wants_changed.set()

    async def _until_subscribed(self, channels: tuple[str, ...]) -> None:
        while not self._subscribed.issuperset(channels):
            self._caught_up.clear()
            await self._caught_up.wait()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                try:
                    await self._relay_from(pubsub)
                finally:
                    self._subscribed = set()
                    await pubsub.aclose()
            except _UNREACHABLE as exc:
                log.warning("Redis subscription lost, retrying in %ss: %r", self.retry_seconds, exc)
                await asyncio.sleep(self.retry_seconds)

    async def _relay_from(self, pubsub: PubSub) -> None:
        """Keep `pubsub` subscribed to what this process wants and hand on what arrives."""
        while True:
            self._wants_changed.clear()
            wanted = set(self._wanted)
            if added := wanted - self._subscribed:
                await pubsub.subscribe(*(self.prefix + c for c in added))
            if removed := self._subscribed - wanted:
                await pubsub.unsubscribe(*(self.prefix + c for c in removed))
            if added or removed:
                self._subscribed = wanted
                self._caught_up.set()
            if not self._subscribed:
                await self._wants_changed.wait()
                continue
            raw = await pubsub.get_message(timeout=self.poll_seconds)
            if raw is not None and raw.get("type") == "message":
                try:
                    message = json.loads(raw["data"])
                except ValueError:  # not one of ours
                    log.warning("ignored a message that is not JSON on %s", raw["channel"])
                    continue
                await self.local.publish(raw["channel"].removeprefix(self.prefix), message)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.local.close()
        await self.redis.aclose()
