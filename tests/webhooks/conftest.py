"""A webhook receiver for the tests: a Starlette app under uvicorn on 127.0.0.1 (a free port), in its
own thread, that records every request and answers as the test says (a status, a delay, headers)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.context import TortoiseContext

from server.app import create_app
from server.seed import seed_demo
from server.settings import Settings
from tests.conftest import make_settings
from tests.servers import _free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    # per path, overriding `status` and `delay`
    status_by_path: dict[str, int] = field(default_factory=dict)
    delay_by_path: dict[str, float] = field(default_factory=dict)
    # requests being answered now, per webhook-id; ids that were received twice at once
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            key = f"{request.url.path} {request.headers.get('webhook-id')}"
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            if self.in_flight[key] > 1:
                self.overlaps.append(key)
            try:
                self.received.append(Received(request.url.path, dict(request.headers), body))
                delay = self.delay_by_path.get(request.url.path, self.delay)
                if delay:
                    await asyncio.sleep(delay)
                status = self.status_by_path.get(request.url.path, self.status)
                return Response(b"", status_code=status, headers=self.headers)
            finally:
                self.in_flight[key] -= 1

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


@contextmanager
def receiving(port: int | None = None) -> Iterator[Receiver]:
    """A receiver on `port` (a free one unless given) until the block ends."""
    port = port or _free_port()
    found = Receiver(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(found.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    try:
        yield found
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings that let webhooks reach the local receiver (127.0.0.1 only)."""
    return make_settings(media_root=tmp_path / "media", webhook_allowed_hosts=("127.0.0.1",))


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()


@pytest_asyncio.fixture
async def strict_client(db: TortoiseContext, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the production default: no address allow-listed."""
    app = create_app(make_settings(media_root=tmp_path / "media"), init_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
