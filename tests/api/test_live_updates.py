"""Live updates as a phone or console receives them: graphql-transport-ws on one real server, changes
made through another, fanned out by the real Redis."""

from __future__ import annotations

import asyncio
import base64
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
OPENING = ("submit", "route", "triage")
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

    async def next_change(self) -> dict[str, Any]:
        """The next message that is not of the case's opening (submitted, routed), which the relay
        may still be delivering when a test subscribes right after submitting."""
        while True:
            message = await self.receive()
            data = (message.get("payload") or {}).get("data") or {}
            if not any(update.get("kind") in OPENING for update in data.values()):
                return message

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


async def listening(server: Server, count: int) -> None:
    """Wait until `count` subscriptions are in place on the server (hearing their channels, through
    Redis where it is used), so no event is published before they can hear it."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(200):
            if (await http.get("/healthz")).json()["liveSubscriptions"] >= count:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} subscriptions in place")


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
        await listening(second, 3)

        accepted = await call(http, TRANSITION, {"input": {"caseId": case_id, "action": "ACCEPT"}}, officer)
        assert accepted["caseTransition"]["case"]["status"] == "ACCEPTED"
        updates = {m["id"]: m for m in [await staff_socket.next_change(), await staff_socket.next_change()]}
        assert updates["case"]["payload"]["data"]["caseUpdated"]["case"]["status"] == "ACCEPTED"
        assert updates["queue"]["payload"]["data"]["departmentQueueUpdated"]["kind"] == "accept"
        mine = (await citizen_socket.next_change())["payload"]["data"]["caseUpdated"]
        assert (mine["kind"], mine["case"]["status"]) == ("accept", "ACCEPTED")

        # Returned to triage: the department stops seeing the case, so its case stream ends, and its
        # queue hears that the case left; the resident keeps following.
        returned = {"caseId": case_id, "action": "RETURN", "reason": "A neighbour dispute, not ours"}
        await call(http, TRANSITION, {"input": returned}, officer)
        messages = {m["id"]: m for m in [await staff_socket.next_change(), await staff_socket.next_change()]}
        assert messages["case"]["type"] == "complete"
        left = messages["queue"]["payload"]["data"]["departmentQueueUpdated"]
        assert (left["kind"], left["case"], left["caseId"]) == ("return", None, case_id)
        mine = (await citizen_socket.next_change())["payload"]["data"]["caseUpdated"]
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


JOINING = """subscription($id: ID!) { caseUpdated(caseId: $id) { kind caseId case { reporterCount } } }"""


async def updates_until(socket: Socket, op: str, field: str, kind: str, case_id: str) -> dict[str, Any]:
    """The operation's updates, skipping others, until the case's of `kind` (a change may be several
    steps, and the queue may still hear of the case opened before)."""
    for _ in range(10):
        message = await socket.receive()
        assert message["id"] == op, message
        update = message["payload"]["data"][field]
        if (update["kind"], update["caseId"]) == (kind, case_id):
            return dict(update)
    raise AssertionError(f"no {kind} update")


async def test_new_reports_and_joins_reach_queue_and_case_subscribers(
    servers: tuple[Server, Server], redis: Redis
) -> None:
    """Written to the outbox on one process, relayed through Redis, heard on the other."""
    first, second = servers
    async with httpx.AsyncClient(base_url=first.url, timeout=20) as http:
        officer = await staff(http, "police.west")
        first_resident, second_resident = await resident(http), await resident(http)
        # Away from the other tests' cases, which share the database on PostgreSQL and would be joined.
        here = {"latitude": 30.23, "longitude": 120.08}
        report = {"clientId": str(uuid.uuid4()), "categoryCode": "noise.neighbour", "location": here}
        opened = (await call(http, SUBMIT, {"input": report}, first_resident))["submitReport"]["case"]
        queue_socket = await Socket.open(second, officer)
        await queue_socket.subscribe("queue", QUEUE_UPDATED, {"id": opened["department"]["id"]})
        await listening(second, 1)

        # A new report in the department's area: its queue hears of the new case, routed to it.
        another = {
            **report,
            "clientId": str(uuid.uuid4()),
            "location": {"latitude": 30.2, "longitude": 120.05},
        }
        new_case = (await call(http, SUBMIT, {"input": another}, first_resident))["submitReport"]["case"]
        routed = await updates_until(queue_socket, "queue", "departmentQueueUpdated", "route", new_case["id"])
        assert routed["case"]["status"] == "ROUTED"

        # A second resident says "me too": the case's followers see two reporters.
        case_socket = await Socket.open(second, first_resident)
        await case_socket.subscribe("case", JOINING, {"id": new_case["id"]})
        await listening(second, 2)
        public_id = base64.b64encode(f"PublicCase:{db_id(new_case['id'])}".encode()).decode()
        me_too = {**another, "clientId": str(uuid.uuid4()), "joinCase": public_id}
        joined = (await call(http, SUBMIT, {"input": me_too}, second_resident))["submitReport"]
        assert joined["userErrors"] == []
        assert joined["case"]["id"] == new_case["id"]
        update = await updates_until(case_socket, "case", "caseUpdated", "report_added", new_case["id"])
        assert update["case"]["reporterCount"] == 2
        for socket in (queue_socket, case_socket):
            await socket.connection.close()
