"""Production reveals nothing (issue 13): no suggestions, and every refusal of a document carries a
stable `extensions.code`, over HTTP and over the WebSocket alike; exactly one operation runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from server.app import create_app
from server.settings import Limits
from tests.api.test_live_updates import Socket
from tests.conftest import make_settings
from tests.servers import Server

DEEP = "{ users { nodes { department { id } } } }"  # depth 4: over the limit of 2 these servers get
ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }"
TOKENS = "{ " + " ".join("__typename" for _ in range(2100)) + " }"
SUBSCRIPTION = 'subscription { caseUpdated(caseId: "Q2FzZTox") { kind } }'


@pytest_asyncio.fixture
async def production(db: TortoiseContext) -> AsyncIterator[httpx.AsyncClient]:
    limits = Limits(max_query_depth=2, requests_per_minute=100_000)
    app = create_app(make_settings(environment="production", limits=limits), init_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def codes(body: dict[str, Any]) -> list[str]:
    assert body.get("data") is None, body
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ mee { id } }"},  # a field
        {"query": "{ users(frist: 2) { nodes { id } } }"},  # an argument
        {"query": "{ users(role: ADMN) { nodes { id } } }"},  # an enum value, inline
        {
            "query": "query($r: Role) { users(role: $r) { nodes { id } } }",
            "variables": {"r": "ADMN"},
        },  # in a variable
        {"query": "query($r: Rol) { users(role: $r) { nodes { id } } }"},  # a type
        {  # an input field
            "query": "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }",
            "variables": {"i": {"login": "a", "pasword": "b"}},
        },
        {"query": 'mutation { signIn(input: {login: "a", pasword: "b"}) { accessToken } }'},
        {"query": "{ me { displayNam } }"},
    ],
)
async def test_production_never_suggests(production: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await post(production, body)
    assert codes(answer) and set(codes(answer)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "did you mean" not in json.dumps(answer).lower()


async def test_development_still_suggests(client: httpx.AsyncClient) -> None:
    answer = await post(client, {"query": "{ users(role: ADMN) { nodes { id } } }"})
    assert "Did you mean" in answer["errors"][0]["message"]


@pytest.mark.parametrize("query", [DEEP, ALIASES, TOKENS])
async def test_limit_refusals_carry_a_code(production: httpx.AsyncClient, query: str) -> None:
    assert codes(await post(production, {"query": query})) == ["QUERY_TOO_COMPLEX"]


async def test_a_syntax_error_carries_a_code(production: httpx.AsyncClient) -> None:
    assert codes(await post(production, {"query": "{ me { "})) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_subscription_over_http_is_refused_with_a_code(production: httpx.AsyncClient) -> None:
    assert codes(await post(production, {"query": SUBSCRIPTION})) == ["SUBSCRIPTION_NEEDS_WEBSOCKET"]


async def test_exactly_one_operation_runs(production: httpx.AsyncClient) -> None:
    two = "query A { __typename } query B { me { id } }"
    assert codes(await post(production, {"query": two})) == ["OPERATION_RESOLUTION_FAILURE"]
    assert await post(production, {"query": two, "operationName": "B"}) == {"data": {"me": None}}
    assert await post(production, {"query": "query A { __typename }"}) == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "body",
    [
        {"query": "query A { __typename } query B { __typename }", "operationName": "C"},
        {"query": "query A { __typename }", "operationName": "B"},
        {"query": "{ __typename }", "operationName": "A"},
        {"query": "{ me { ", "operationName": "A"},  # a syntax error with a name keeps its own code
    ],
)
async def test_an_operation_name_not_in_the_document_is_refused_with_a_code(
    production: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    expected = "GRAPHQL_VALIDATION_FAILED" if body["query"].endswith("{ ") else "OPERATION_RESOLUTION_FAILURE"
    assert codes(await post(production, body)) == [expected]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(
        tmp_path,
        env={
            "ENVIRONMENT": "production",
            "SECRET_KEY": "s" * 64,
            "REDIS_URL": "",
            "MAX_QUERY_DEPTH": "2",
            # production refuses the log code sender (issue 14); no code is sent in these tests
            "OTP_SENDER": "sms",
            "SMS_PROVIDER": "aliyun",
            "ALIYUN_ACCESS_KEY_ID": "unused",
            "ALIYUN_ACCESS_KEY_SECRET": "unused",
        },
        name="production",
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


async def refused_over_socket(
    socket: Socket, op: str, query: str, variables: dict[str, Any] | None = None
) -> Any:
    """The `error` message that ends a refused operation (never a silent `complete`)."""
    await socket.subscribe(op, query, variables or {})
    message = await socket.receive()
    assert message["id"] == op and message["type"] == "error", message
    return message["payload"]


async def test_the_websocket_refuses_with_the_same_codes(server: Server) -> None:
    socket = await Socket.open(server, None)
    try:
        for i, query in enumerate((DEEP, ALIASES, TOKENS)):
            errors = await refused_over_socket(socket, f"limit{i}", query)
            assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COMPLEX"]
        errors = await refused_over_socket(socket, "two", "query A { __typename } query B { __typename }")
        assert [e["extensions"]["code"] for e in errors] == ["OPERATION_RESOLUTION_FAILURE"]
        await socket.send(
            {
                "id": "named",
                "type": "subscribe",
                "payload": {"query": "query A { __typename }", "operationName": "B"},
            }
        )
        message = await socket.receive()
        assert message["id"] == "named" and message["type"] == "error", message
        assert [e["extensions"]["code"] for e in message["payload"]] == ["OPERATION_RESOLUTION_FAILURE"]
        errors = await refused_over_socket(socket, "typo", "subscription { caseUpdatd(caseId: 1) { kind } }")
        assert "did you mean" not in json.dumps(errors).lower()
        assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
        errors = await refused_over_socket(
            socket, "nul", "subscription($id: ID!) { caseUpdated(caseId: $id) { kind } }", {"id": "a\x00b"}
        )
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [
            ("INVALID", ["caseId"])
        ]
    finally:
        await socket.connection.close()
