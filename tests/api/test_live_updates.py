"""Live updates as a phone or console receives them: graphql-transport-ws on one real server, changes
made through another, fanned out by the real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from server.seed import load_demo_city
from tests.api.conftest import REDIS_URL
from tests.reports.helpers import db_id
from tests.servers import Server

WEST = {"latitude": 30.26, "longitude": 120.10}

SUBMIT = """mutation($input: SubmitReportInput!) {
  submitReport(input: $input) { case { id department { id } } userErrors { code message } } }"""
TRANSITION = """mutation($input: CaseTransitionInput!) {
  caseTransition(input: $input) { case { status } userErrors { code message } } }"""
CASE_UPDATED = "subscription($id: ID!) { caseUpdated(caseId: $id) { kind caseId case { status version } } }"
QUEUE_UPDATED = """subscription($id: ID) {
  departmentQueueUpdated(departmentId: $id) { kind caseId case { status } } }"""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two server processes sharing one database and one Redis, like two workers behind a proxy."""
    env = {"REDIS_URL": REDIS_URL}
    first = Server(tmp_path, "--seed-demo", env=env, name="first")
    second = None
    try:
        first.wait_ready()
        second = Server(tmp_path, env=env, name="second")
        second.wait_ready()
        yield first, second
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()


async def call(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def resident(http: httpx.AsyncClient) -> str:
    query = "mutation($input: DeviceRegisterInput!) { deviceRegister(input: $input) { accessToken } }"
    response = await http.post(
        "/graphql", json={"query": query, "variables": {"input": {"deviceKey": uuid.uuid4().hex * 2}}}
    )
    return response.json()["data"]["deviceRegister"]["accessToken"]


async def staff(http: httpx.AsyncClient, username: str) -> str:
    query = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }"
    login = {"login": username, "password": load_demo_city()["password"]}
    response = await http.post("/graphql", json={"query": query, "variables": {"input": login}})
    return response.json()["data"]["signIn"]["accessToken"]


class Socket:
    """One graphql-transport-ws connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, server: Server, token: str | None) -> Socket:
        url = server.url.replace("http://", "ws://") + "/graphql"
        connection = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
        socket = cls(connection)
        await socket.send({"type": "connection_init", "payload": {"authToken": token} if token else {}})
        assert (await socket.receive())["type"] == "connection_ack"
        return socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout=10))

    async def subscribe(self, op: str, query: str, variables: dict[str, Any]) -> None:
        await self.send({"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables}})

    async def refusal(self, op: str, query: str, variables: dict[str, Any]) -> str:
        """Subscribe and read until the server ends the operation; the messages, as text."""
        await self.subscribe(op, query, variables)
        seen = []
        while True:
            message = await self.receive()
            payload = message.get("payload")
            assert message["id"] == op and not (isinstance(payload, dict) and payload.get("data")), message
            seen.append(json.dumps(message))
            if message["type"] in ("error", "complete"):
                return " ".join(seen)


async def listening(redis: Redis, channel: str, count: int) -> None:
    """Wait until the servers have subscribed to a channel, so no event is published before anyone hears."""
    for _ in range(200):
        ((_, subscribers),) = await redis.pubsub_numsub(f"envcase:{channel}")
        if subscribers >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nobody subscribed to {channel}")


async def test_case_and_queue_updates_reach_subscribers_on_another_process(
    servers: tuple[Server, Server], redis: Redis
) -> None:
    first, second = servers
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as http:
        citizen = await resident(http)
        officer = await staff(http, "police.west")
        report = {
            "clientId": str(uuid.uuid4()),
            "categoryCode": "noise.neighbour",
            "description": "Karaoke every night",
            "location": WEST,
        }
        submitted = (await call(http, SUBMIT, {"input": report}, citizen))["submitReport"]
        assert submitted["userErrors"] == []
        case_id = submitted["case"]["id"]
        department_id = submitted["case"]["department"]["id"]

        staff_socket = await Socket.open(second, officer)
        citizen_socket = await Socket.open(second, citizen)
        await staff_socket.subscribe("case", CASE_UPDATED, {"id": case_id})
        await staff_socket.subscribe("queue", QUEUE_UPDATED, {"id": department_id})
        await citizen_socket.subscribe("mine", CASE_UPDATED, {"id": case_id})
        await listening(redis, f"case:{db_id(case_id)}", 2)

        accepted = await call(http, TRANSITION, {"input": {"caseId": case_id, "action": "ACCEPT"}}, officer)
        assert accepted["caseTransition"]["case"]["status"] == "ACCEPTED"
        updates = {m["id"]: m for m in [await staff_socket.receive(), await staff_socket.receive()]}
        assert updates["case"]["payload"]["data"]["caseUpdated"]["case"]["status"] == "ACCEPTED"
        assert updates["queue"]["payload"]["data"]["departmentQueueUpdated"]["kind"] == "accept"
        mine = (await citizen_socket.receive())["payload"]["data"]["caseUpdated"]
        assert (mine["kind"], mine["case"]["status"]) == ("accept", "ACCEPTED")

        # Returned to triage: the department stops seeing the case, so its case stream ends, and its
        # queue hears that the case left; the resident keeps following.
        returned = {"caseId": case_id, "action": "RETURN", "reason": "A neighbour dispute, not ours"}
        await call(http, TRANSITION, {"input": returned}, officer)
        messages = {m["id"]: m for m in [await staff_socket.receive(), await staff_socket.receive()]}
        assert messages["case"]["type"] == "complete"
        left = messages["queue"]["payload"]["data"]["departmentQueueUpdated"]
        assert (left["kind"], left["case"], left["caseId"]) == ("return", None, case_id)
        mine = (await citizen_socket.receive())["payload"]["data"]["caseUpdated"]
        assert mine["case"]["status"] == "RETURNED"
        for socket in (staff_socket, citizen_socket):
            await socket.connection.close()


async def test_subscriptions_are_authorized(servers: tuple[Server, Server], redis: Redis) -> None:
    first, second = servers
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as http:
        owner = await resident(http)
        report = {"clientId": str(uuid.uuid4()), "categoryCode": "noise.neighbour", "location": WEST}
        case_id = (await call(http, SUBMIT, {"input": report}, owner))["submitReport"]["case"]["id"]
        stranger = await resident(http)
        other_department = await staff(http, "eco.staff")

    socket = await Socket.open(second, stranger)
    assert "No such case" in await socket.refusal("peek", CASE_UPDATED, {"id": case_id})
    refused = await socket.refusal("queue", QUEUE_UPDATED, {"id": None})
    assert "Only the department's staff and dispatchers" in refused
    await socket.connection.close()

    socket = await Socket.open(second, other_department)
    assert "No such case" in await socket.refusal("peek", CASE_UPDATED, {"id": case_id})
    await socket.connection.close()

    anonymous = await Socket.open(second, None)
    assert "Sign in first" in await anonymous.refusal("peek", CASE_UPDATED, {"id": case_id})
    await anonymous.connection.close()
