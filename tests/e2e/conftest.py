"""End-to-end: real `python -m server run` processes (and `python -m server worker` ones) on the
demo city, driven over HTTP as clients would, with third-party services as local fakes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from tests.servers import Server, Worker
from tests.webhooks.conftest import Receiver, receiving

# Quick passes and short backoffs, so that outcomes show within seconds.
FAST = {
    "DELIVERY_POLL_SECONDS": "0.1",
    "DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "DELIVERY_BACKOFF_CAP_SECONDS": "0.5",
}


class City:
    """Servers and workers on one database (the test's PostgreSQL one, or their own SQLite file)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[Server] = []
        self.workers: list[Worker] = []
        self.clients: list[httpx.AsyncClient] = []

    async def server(self, **env: str) -> httpx.AsyncClient:
        """A server with the demo city (seeded by the first one); returns a client of its API."""
        first = not self.servers
        args = ("--seed-demo",) if first else ()
        server = Server(self.tmp_path, *args, env={**FAST, **env}, name=f"server{len(self.servers)}")
        self.servers.append(server)
        await asyncio.to_thread(server.wait_ready, 60)
        client = httpx.AsyncClient(base_url=server.url, timeout=30)
        self.clients.append(client)
        return client

    async def worker(self, **env: str) -> Worker:
        worker = Worker(self.tmp_path, env={**FAST, **env}, name=f"worker{len(self.workers)}")
        self.workers.append(worker)
        await asyncio.to_thread(worker.wait_started, 60)
        return worker

    def logs(self) -> str:
        processes: list[Server | Worker] = [*self.servers, *self.workers]
        return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text()}" for p in processes)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        processes: list[Server | Worker] = [*self.workers, *self.servers]
        for process in processes:
            await asyncio.to_thread(process.stop)


@pytest_asyncio.fixture
async def city(db: TortoiseContext, tmp_path: Path) -> AsyncIterator[City]:
    # `db` empties the tables first: on PostgreSQL the processes share the test database.
    found = City(tmp_path)
    try:
        yield found
    finally:
        await found.close()


async def eventually(check: Callable[[], object], within: float = 30, what: str = "") -> Any:
    """Poll `check` (a function, sync or async) until it gives something truthy, and return that; fail
    after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not within {within} s: {what or check}; last: {result!r}")
        await asyncio.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An integrator's webhook receiver (tests/webhooks/conftest.py)."""
    with receiving() as found:
        yield found
