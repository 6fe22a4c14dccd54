"""A session ends everywhere at once: signing out, reusing a refresh token, deactivation and a role
change end the live subscriptions of that session's sockets with UNAUTHENTICATED, at the next update
or, when nothing happens, at the next periodic check. graphql-transport-ws on a real server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from tortoise.context import TortoiseContext

from identity.models import Role, User
from server.db import tortoise_config
from server.seed import load_demo_city
from tests.api.conftest import REDIS_URL
from tests.api.test_live_updates import (
    CASE_UPDATED,
    QUEUE_UPDATED,
    SUBMIT,
    TRANSITION,
    WEST,
    Socket,
    listening,
)
from tests.conftest import DATABASE_URL, IS_POSTGRES
from tests.graphql_client import gql_data
from tests.servers import Server

SIGN_IN = """mutation($input: SignInInput!) { signIn(input: $input) { accessToken refreshToken } }"""
SIGN_OUT = "mutation($t: String!) { signOut(input: {refreshToken: $t}) { signedOut } }"
REFRESH = """mutation($t: String!) { tokenRefresh(input: {refreshToken: $t}) {
  refreshToken userErrors { code } } }"""


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest, redis: Redis) -> Iterator[Server]:
    """One server on the demo city; `@pytest.mark.parametrize("server", [env], indirect=True)` adds to
    its environment."""
    env: dict[str, str] = {"REDIS_URL": REDIS_URL, **getattr(request, "param", {})}
    started = Server(tmp_path, "--seed-demo", env=env)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@asynccontextmanager
async def server_database(tmp_path: Path) -> AsyncIterator[None]:
    """The server's own database, for what has no API yet (deactivating an account, changing a role)."""
    url = DATABASE_URL if IS_POSTGRES else f"sqlite://{tmp_path / 'data' / 'envcase.sqlite3'}"
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        yield


async def signed_in(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    login = {"login": username, "password": load_demo_city()["password"]}
    return (await gql_data(http, SIGN_IN, {"input": login}))["signIn"]


async def resident(http: httpx.AsyncClient) -> str:
    query = "mutation($input: DeviceRegisterInput!) { deviceRegister(input: $input) { accessToken } }"
    return (await gql_data(http, query, {"input": {"deviceKey": uuid.uuid4().hex * 2}}))["deviceRegister"][
        "accessToken"
    ]


async def ended(socket: Socket, *ops: str) -> None:
    """Each operation ends with one UNAUTHENTICATED error, then `complete`."""
    pending = {op: "next" for op in ops}
    while pending:
        message = await socket.receive()
        op = message["id"]
        assert message["type"] == pending.get(op), message
        if message["type"] == "next":
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "UNAUTHENTICATED", message
            pending[op] = "complete"
        else:
            del pending[op]


async def still_open(socket: Socket) -> None:
    """Nothing ended: the next thing the socket hears is the answer to a ping."""
    await socket.send({"type": "ping"})
    assert (await socket.receive())["type"] == "pong"


async def test_signing_out_ends_the_sessions_subscriptions_at_the_next_update(
    server: Server, redis: Redis
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        citizen = await resident(http)
        report = {"clientId": str(uuid.uuid4()), "categoryCode": "noise.neighbour", "location": WEST}
        case = (await gql_data(http, SUBMIT, {"input": report}, citizen))["submitReport"]["case"]
        officer = await signed_in(http, "police.west")
        colleague = await signed_in(http, "police.west")  # the same person on another device

        socket = await Socket.open(server, officer["accessToken"])
        await socket.subscribe("case", CASE_UPDATED, {"id": case["id"]})
        await socket.subscribe("queue", QUEUE_UPDATED, {"id": case["department"]["id"]})
        other = await Socket.open(server, colleague["accessToken"])
        await other.subscribe("case", CASE_UPDATED, {"id": case["id"]})
        await listening(server, 3)
        accept = {"input": {"caseId": case["id"], "action": "ACCEPT"}}
        await gql_data(http, TRANSITION, accept, colleague["accessToken"])
        assert {(await socket.next_change())["id"], (await socket.next_change())["id"]} == {"case", "queue"}
        assert (await other.next_change())["type"] == "next"

        await gql_data(http, SIGN_OUT, {"t": officer["refreshToken"]})
        start = {"input": {"caseId": case["id"], "action": "START"}}
        await gql_data(http, TRANSITION, start, colleague["accessToken"])
        await ended(socket, "case", "queue")
        # The other session goes on hearing; the signed-out socket starts nothing new.
        update = (await other.next_change())["payload"]["data"]["caseUpdated"]
        assert update["case"]["status"] == "IN_PROGRESS"
        refused = await socket.refusal("again", CASE_UPDATED, {"id": case["id"]})
        assert "UNAUTHENTICATED" in refused
        for open_socket in (socket, other):
            await open_socket.connection.close()


QUICK_CHECKS = {"SESSION_RECHECK_SECONDS": "0.5", "REFRESH_GRACE_SECONDS": "0"}


@pytest.mark.parametrize("server", [QUICK_CHECKS], indirect=True)
async def test_quiet_subscriptions_end_with_their_session(
    server: Server, redis: Redis, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        signing_out = await signed_in(http, "dispatcher")
        reused = await signed_in(http, "dispatcher")
        deactivated = await signed_in(http, "admin")
        moved = await signed_in(http, "police.west")
        untouched = await signed_in(http, "dispatcher")
        sockets: dict[str, Socket] = {}
        for name, tokens in [
            ("signing_out", signing_out),
            ("reused", reused),
            ("deactivated", deactivated),
            ("moved", moved),
            ("untouched", untouched),
        ]:
            sockets[name] = await Socket.open(server, tokens["accessToken"])
            # The office follows the triage queue, staff their department's.
            me = await gql_data(http, "{ me { department { id } } }", {}, tokens["accessToken"])
            department = me["me"]["department"]
            await sockets[name].subscribe("live", QUEUE_UPDATED, {"id": department and department["id"]})
        await listening(server, len(sockets))

        await gql_data(http, SIGN_OUT, {"t": signing_out["refreshToken"]})
        assert (await gql_data(http, REFRESH, {"t": reused["refreshToken"]}))["tokenRefresh"][
            "userErrors"
        ] == []
        again = (await gql_data(http, REFRESH, {"t": reused["refreshToken"]}))["tokenRefresh"]
        assert again["userErrors"] == [{"code": "UNAUTHENTICATED"}]  # reuse: the family is revoked
        async with server_database(tmp_path):
            await User.filter(username="admin").update(is_active=False)
            await User.filter(username="police.west").update(role=Role.DISPATCHER, department_id=None)

        for name in ("signing_out", "reused", "deactivated", "moved"):
            await ended(sockets[name], "live")
        await still_open(sockets["untouched"])
        for socket in sockets.values():
            await socket.connection.close()
