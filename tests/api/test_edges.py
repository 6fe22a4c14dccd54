"""The HTTP edge: bodies the server cannot read, ids no row can have, and a database that goes away
answer JSON errors with stable codes, never a plain-text 500; a lost connection is reported as what
is known: UNAVAILABLE before a commit started, OUTCOME_UNKNOWN once one had."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from asyncpg.exceptions import InternalClientError
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from identity.models import Role
from kernel import clock
from kernel.database import atomic, connection_loss_reported, is_connection_lost
from kernel.errors import DomainError, ErrorCode
from reports.models import Category, Report
from server.seed import seed_demo
from tests.conftest import DATABASE_URL, IS_POSTGRES
from tests.graphql_client import gql, new_account
from tests.reports.helpers import SUBMIT, report_input, resident, submit

T = TypeVar("T")
HUGE = 2**63  # one past the largest id either engine stores

pytestmark = pytest.mark.usefixtures("db")


def code_of(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


# --- bodies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"null", b"1", b"true", b'"query"', b"[]", b"NaN", b'{"query": "{ __typename }", "variables": {"x": NaN}}',
     b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b'{"query": 1}', b"{"],
    ids=["null", "number", "true", "string", "list", "NaN", "NaN-inside", "bad-utf8", "deep", "query-type",
         "truncated"],
)  # fmt: skip
async def test_a_body_that_is_not_a_json_object_is_a_json_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert code_of(response) == "BAD_REQUEST"


async def test_an_unsupported_content_type_is_a_json_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400 and code_of(response) == "BAD_REQUEST"


OPERATIONS = json.dumps({"query": "{ __typename }", "variables": {"file": None}})


@pytest.mark.parametrize(
    ("operations", "files_map"),
    [
        (OPERATIONS, "[]"),
        (OPERATIONS, '["variables.file"]'),
        (OPERATIONS, '{"0": "variables.file"}'),
        (OPERATIONS, '{"0": [1]}'),
        (OPERATIONS, '{"9": ["variables.file"]}'),
        (OPERATIONS, '{"0": ["variables.file.deeper"]}'),
        (OPERATIONS, '{"0": ["variables.nothing.here"]}'),
        (OPERATIONS, "not json"),
        ("[]", '{"0": ["variables.file"]}'),
        ("null", '{"0": ["variables.file"]}'),
        ("1", "{}"),
    ],
    ids=["map-list", "map-list-of-paths", "map-path-not-list", "map-path-not-text", "missing-file",
         "path-into-null", "path-not-there", "map-not-json", "operations-list", "operations-null",
         "operations-number"],
)  # fmt: skip
async def test_a_malformed_multipart_upload_is_a_json_400(
    client: httpx.AsyncClient, operations: str, files_map: str
) -> None:
    response = await client.post(
        "/graphql", data={"operations": operations, "map": files_map}, files={"0": ("a.gpx", b"<gpx/>")}
    )
    assert response.status_code == 400
    assert code_of(response) == "BAD_REQUEST"


async def test_a_multipart_upload_without_operations_is_a_json_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", data={"map": "{}"}, files={"0": ("a.gpx", b"<gpx/>")})
    assert response.status_code == 400 and code_of(response) == "BAD_REQUEST"


# --- ids past the 64-bit range ------------------------------------------------------------------------


async def test_ids_past_the_64_bit_range_in_urls_are_not_found(client: httpx.AsyncClient) -> None:
    token = await new_account(client, Role.ADMIN, "edge.admin")
    auth = {"Authorization": f"Bearer {token}"}
    for path in (
        f"/media/photos/{HUGE}/original",
        f"/media/photos/{10**40}/original",
        f"/patrols/{HUGE}/track.gpx",
        f"/patrols/{10**40}/track.geojson",
    ):
        response = await client.get(path, headers=auth)
        assert response.status_code == 404, (path, response.text)
        assert code_of(response) == "NOT_FOUND"


@pytest.mark.parametrize("claim", ["sid", "sub"])
async def test_a_token_naming_an_id_past_the_64_bit_range_is_refused(
    client: httpx.AsyncClient, settings: Any, claim: str
) -> None:
    claims = {
        "sub": "1",
        "sid": "1",
        "typ": "access",
        "exp": int((clock.now() + timedelta(minutes=5)).timestamp()),
    }
    token = jwt.encode({**claims, claim: str(HUGE)}, settings.secret_key, algorithm="HS256")
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401 and code_of(response) == "UNAUTHENTICATED"


# --- a connection lost: what was saved is said honestly (both engines) ---------------------------------


async def test_a_connection_lost_before_any_commit_is_unavailable(db: TortoiseContext) -> None:
    with pytest.raises(DomainError) as refused:
        async with connection_loss_reported(), atomic():
            await Category.filter(code="nothing").exists()
            raise ConnectionResetError("the server closed the connection")
    assert refused.value.code is ErrorCode.UNAVAILABLE


async def test_a_savepoint_released_is_not_a_commit(db: TortoiseContext) -> None:
    with pytest.raises(DomainError) as refused:
        async with connection_loss_reported(), atomic():
            async with atomic():  # a savepoint: nothing is committed when it ends
                await Category.filter(code="nothing").exists()
            raise ConnectionResetError("the server closed the connection")
    assert refused.value.code is ErrorCode.UNAVAILABLE


async def test_a_connection_lost_after_a_commit_started_is_outcome_unknown(db: TortoiseContext) -> None:
    with pytest.raises(DomainError) as refused:
        async with connection_loss_reported():
            async with atomic():
                await Category.filter(code="nothing").exists()
            raise ConnectionResetError("the server closed the connection")  # e.g. reading the answer
    assert refused.value.code is ErrorCode.OUTCOME_UNKNOWN
    assert "same clientId" in refused.value.message


def test_a_killed_pooled_connections_protocol_error_is_a_lost_connection() -> None:
    # What asyncpg raises on a pooled connection whose backend was terminated between two uses.
    error = InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    wrapped = OperationalError(error)  # as Tortoise re-raises it, `from` the driver's
    wrapped.__cause__ = error
    assert is_connection_lost(wrapped)
    assert not is_connection_lost(ValueError("a bug"))


async def test_other_errors_pass_through(db: TortoiseContext) -> None:
    with pytest.raises(KeyError):
        async with connection_loss_reported():
            raise KeyError("a bug stays a bug")


# --- a connection killed under a request (PostgreSQL) -----------------------------------------------------

postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="pg_terminate_backend is PostgreSQL's")


async def _killed_while_blocked(lock_sql: str, request: Awaitable[T]) -> T:
    """Run `request` while another session holds `lock_sql`; kill the backend it waits on."""
    import asyncpg

    holder = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1))
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute(lock_sql)
        pending = asyncio.ensure_future(request)
        pids: list[Any] = []
        for _ in range(200):
            pids = await holder.fetch(
                "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if pids or pending.done():
                break
            await asyncio.sleep(0.05)
        assert pids, "the request never waited on the lock"
        await holder.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
        await lock.rollback()
        return await pending
    finally:
        await holder.close()


@postgres_only
async def test_the_token_check_answers_503_when_its_connection_dies(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    response = await _killed_while_blocked(
        "LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE",
        client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
        ),
    )
    assert response.status_code == 503 and code_of(response) == "UNAVAILABLE"


@postgres_only
async def test_a_route_answers_503_when_its_connection_dies(client: httpx.AsyncClient) -> None:
    key = "derivatives/ab/ab/" + "ab" * 32 + "-thumb.jpg"
    response = await _killed_while_blocked(
        "LOCK TABLE photos IN ACCESS EXCLUSIVE MODE", client.get(f"/media/{key}")
    )
    assert response.status_code == 503 and code_of(response) == "UNAVAILABLE"


@postgres_only
async def test_a_query_whose_connection_dies_is_unavailable(client: httpx.AsyncClient) -> None:
    body = await _killed_while_blocked(
        "LOCK TABLE patrol_areas IN ACCESS EXCLUSIVE MODE",
        gql(client, "{ patrolAreas(first: 1) { nodes { id } } }"),
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"


@postgres_only
async def test_a_submission_killed_during_its_commit_is_outcome_unknown_and_a_retry_is_safe(
    client: httpx.AsyncClient,
) -> None:
    await seed_demo()
    token, _ = await resident(client)
    payload = report_input()
    # A deferred trigger makes the COMMIT itself wait on a lock the test holds, then the test kills it.
    ddl = [
        "CREATE FUNCTION edge_commit_gate() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER edge_commit_gate AFTER INSERT ON reports DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION edge_commit_gate()",
    ]
    import asyncpg

    admin = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1))
    try:
        for statement in ddl:
            await admin.execute(statement)
        result = await _killed_while_blocked(
            "SELECT pg_advisory_xact_lock(4242)", submit(client, token, payload)
        )
    finally:
        await admin.execute("DROP TRIGGER edge_commit_gate ON reports; DROP FUNCTION edge_commit_gate()")
        await admin.close()
    assert result["report"] is None
    assert [e["code"] for e in result["userErrors"]] == ["OUTCOME_UNKNOWN"]
    # The client retries with the same client id: exactly one report, whatever the first outcome was.
    retried = (await gql(client, SUBMIT, {"input": payload}, token=token))["data"]["submitReport"]
    assert retried["userErrors"] == [] and retried["report"]["clientId"] == payload["clientId"]
    assert await Report.filter(client_id=payload["clientId"]).count() == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/no/such/route", 404, "NOT_FOUND"), ("PUT", "/graphql", 405, "BAD_REQUEST")],
)
async def test_the_routers_own_refusals_are_json(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status and code_of(response) == code
