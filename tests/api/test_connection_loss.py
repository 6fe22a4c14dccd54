"""A database that keeps going away (PostgreSQL's pg_terminate_backend): the WebSocket's token check
closes the socket as UNAVAILABLE, and under load no request gets a 500 and no UNAVAILABLE answer hides
a committed write (issue 13's "Done when")."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tortoise.context import TortoiseContext
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.api.test_edges import _killed_while_blocked
from tests.conftest import DATABASE_URL, IS_POSTGRES
from tests.reports.helpers import SUBMIT, report_input, resident
from tests.servers import Server

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="pg_terminate_backend is PostgreSQL's")

PG_URL = DATABASE_URL.replace("postgres://", "postgresql://", 1)


@pytest.fixture
def server(db: TortoiseContext, tmp_path: Path) -> Iterator[Server]:
    """A real server on the demo city, with the per-client budgets out of the load's way."""
    env = {"REDIS_URL": "", "REQUESTS_PER_MINUTE": "100000", "REPORT_SUBMISSIONS_PER_HOUR": "100000"}
    running = Server(tmp_path, "--seed-demo", env=env, name="loss")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


async def _closed_after_init(server: Server, token: str) -> ConnectionClosed:
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        await socket.send(f'{{"type": "connection_init", "payload": {{"authToken": "{token}"}}}}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=10)
    return closed.value


async def test_the_websocket_token_check_closes_as_unavailable_when_its_connection_dies(
    server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        token, _ = await resident(http)
    closed = await _killed_while_blocked(
        "LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE", _closed_after_init(server, token)
    )
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1013, "UNAVAILABLE")


# --- the load test ----------------------------------------------------------------------------------------

SUBMISSIONS = 240
CONCURRENCY = 8
KILL_EVERY = 0.05


@contextlib.asynccontextmanager
async def killing_backends(database: str) -> AsyncIterator[list[int]]:
    """Terminates one other backend of `database` (at random) every KILL_EVERY seconds, while the block
    runs: so some requests lose their connection at any step and others get through."""
    killer = await asyncpg.connect(PG_URL)
    killed: list[int] = []

    async def kill() -> None:
        while True:
            rows = await killer.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1",
                database,
            )
            killed.append(len(rows))
            await asyncio.sleep(KILL_EVERY)

    task = asyncio.ensure_future(kill())
    try:
        yield killed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await killer.close()


def _outcome(response: httpx.Response) -> str:
    """'saved', or the code of a coded refusal; anything else (a 500, plain text, INTERNAL) fails."""
    assert response.status_code in (200, 503), (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    if response.status_code == 503:  # the token check or the middleware: nothing ran
        return str(body["errors"][0]["extensions"]["code"])
    if body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    payload = body["data"]["submitReport"]
    if payload["userErrors"]:
        return str(payload["userErrors"][0]["code"])
    assert payload["report"] is not None
    return "saved"


async def test_under_repeated_backend_kills_no_500_and_no_hidden_write(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        token, _ = await resident(http)
        headers = {"Authorization": f"Bearer {token}"}
        payloads = [report_input() for _ in range(SUBMISSIONS)]
        outcomes: dict[str, str] = {}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(payload: dict[str, Any]) -> None:
            async with gate:
                response = await http.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": payload}}, headers=headers
                )
                outcomes[payload["clientId"]] = _outcome(response)

        database = PG_URL.rsplit("/", 1)[1]
        started = time.monotonic()
        async with killing_backends(database) as killed:
            await asyncio.gather(*(one(p) for p in payloads))
        elapsed = time.monotonic() - started

        counts = {code: list(outcomes.values()).count(code) for code in set(outcomes.values())}
        print(f"{SUBMISSIONS} submissions in {elapsed:.1f} s, {sum(killed)} backends killed: {counts}")
        assert set(counts) <= {"saved", "UNAVAILABLE", "OUTCOME_UNKNOWN"}, counts
        assert counts.get("UNAVAILABLE", 0) > 0, "the kills never hit a request"
        assert counts.get("saved", 0) > 0, "nothing got through: the test says nothing about hidden writes"

        checker = await asyncpg.connect(PG_URL)
        try:
            rows = await checker.fetch(
                "SELECT client_id::text, count(*) AS n FROM reports GROUP BY client_id"
            )
        finally:
            await checker.close()
        stored = {row["client_id"]: row["n"] for row in rows}
        assert all(n == 1 for n in stored.values())
        hidden = [c for c, outcome in outcomes.items() if outcome == "UNAVAILABLE" and c in stored]
        assert hidden == [], f"answered UNAVAILABLE but saved: {hidden}"
        lost = [c for c, outcome in outcomes.items() if outcome == "saved" and c not in stored]
        assert lost == [], f"answered saved but not stored: {lost}"

        # An unknown outcome is settled by a retry with the same client id: one report, never two.
        for payload in payloads:
            if outcomes[payload["clientId"]] == "OUTCOME_UNKNOWN":
                retried = await http.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": payload}}, headers=headers
                )
                assert _outcome(retried) == "saved"
        checker = await asyncpg.connect(PG_URL)
        try:
            duplicates = await checker.fetchval(
                "SELECT count(*) FROM (SELECT client_id FROM reports GROUP BY client_id HAVING count(*) > 1) d"
            )
        finally:
            await checker.close()
        assert duplicates == 0
