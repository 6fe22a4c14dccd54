"""Live-update fan-out: the outbox relay (`kernel.outbox`) publishes small JSON messages on named
channels once their change has committed; subscriptions listen. In one process the local bus is
enough; with REDIS_URL the server uses Redis so every process's subscribers hear every process's
events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

Message = dict[str, Any]


class EventBus(Protocol):
    # Subscriptions in place in this process (a subscription counts once it hears its channels).
    listening: int

    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Message]]:
        """`async with bus.subscribe("case:1") as messages: async for m in messages: ...`"""
        ...

    async def close(self) -> None: ...


class LocalEventBus:
    """In-process fan-out. A slow subscriber loses its oldest messages rather than stalling publishers."""

    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.queues: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)
        self.listening = 0

    async def publish(self, channel: str, message: Message) -> None:
        for queue in list(self.queues.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[Message]]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self.queue_size)
        for channel in channels:
            self.queues[channel].add(queue)

        async def messages() -> AsyncIterator[Message]:
            while True:
                yield await queue.get()

        self.listening += 1
        try:
            yield messages()
        finally:
            self.listening -= 1
            for channel in channels:
                self.queues[channel].discard(queue)
                if not self.queues[channel]:
                    del self.queues[channel]

    async def close(self) -> None:
        self.queues.clear()
