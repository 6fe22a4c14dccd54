"""The service as it really runs: `python -m server run` under uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_real_server_applies_migrations_and_answers(server: Server) -> None:
    health = httpx.get(f"{server.url}/healthz")
    assert health.json() == {
        "status": "ok",
        "database": "ok",
        "media": {"storage": "local", "status": "ok"},
        "liveSubscriptions": 0,
    }
    response = httpx.post(f"{server.url}/graphql", json={"query": "{ __typename me { id } }"})
    assert response.json() == {"data": {"__typename": "Query", "me": None}}
    assert response.headers["x-request-id"]


async def test_graceful_shutdown_finishes_requests_in_flight(server: Server) -> None:
    """SIGTERM while a request is still arriving: it completes, then connections close without errors."""
    body = b'{"query": "{ __typename }"}'
    sent_first_half = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:10]
        sent_first_half.set()
        await asyncio.sleep(1.0)
        yield body[10:]

    async with httpx.AsyncClient(timeout=20) as client:
        request = asyncio.create_task(
            client.post(
                f"{server.url}/graphql",
                content=slow_body(),
                headers={"content-type": "application/json", "content-length": str(len(body))},
            )
        )
        await sent_first_half.wait()
        await asyncio.sleep(0.2)
        server.terminate()
        response = await request
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    # uvicorn re-raises the captured SIGTERM after its orderly shutdown, so "killed by SIGTERM" is clean.
    assert await asyncio.to_thread(server.stop) in (0, -signal.SIGTERM)
    log = server.log_path.read_text()
    assert "database connections closed" in log
    assert "Traceback" not in log and " ERROR " not in log, log
