"""The event bus over Redis pub/sub, for several server processes or machines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from kernel.events import Message


class RedisEventBus:
    def __init__(self, url: str, prefix: str = "envcase:") -> None:
        self.redis = Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    async def publish(self, channel: str, message: Message) -> None:
        await self.redis.publish(
            self.prefix + channel, json.dumps(message, separators=(",", ":"), default=str)
        )

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[Message]]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*(self.prefix + c for c in channels))

        async def messages() -> AsyncIterator[Message]:
            async for raw in pubsub.listen():
                if raw.get("type") == "message":
                    yield json.loads(raw["data"])

        try:
            yield messages()
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def close(self) -> None:
        await self.redis.aclose()
