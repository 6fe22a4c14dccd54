"""The HTTP face: limits, error shapes and bad requests. Never a 500, never a stack trace."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from schema import build_schema
from schema.context import Context
from server.app import create_app, identity_config
from tests.conftest import make_settings
from tests.graphql_client import gql


def _no_leak(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


async def test_health_checks_the_database(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {
        "status": "ok",
        "database": "ok",
        "media": {"storage": "local", "status": "ok"},
        "liveSubscriptions": 0,
    }


async def test_every_response_has_a_request_id(client):
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "abc123"}
    )
    assert response.headers["x-request-id"] == "abc123"
    generated = await client.post("/graphql", json={"query": "{ __typename }"})
    assert len(generated.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b"query={__typename}", {"content-type": "application/x-www-form-urlencoded"}),
        (b"{ __typename }", {"content-type": "text/plain"}),
        (b"", {"content-type": "application/json"}),
        (b'{"query": 5}', {"content-type": "application/json"}),
        (b'{"query": "{ __typename }", "variables": "x"}', {"content-type": "application/json"}),
        (b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}]', {"content-type": "application/json"}),
    ],
)
async def test_malformed_requests_get_400(client, content, headers):
    response = await client.post("/graphql", content=content, headers=headers)
    _no_leak(response)
    assert response.status_code == 400


async def test_mutations_never_run_over_get(client):
    response = await client.get(
        "/graphql", params={"query": 'mutation { signOut(input: {refreshToken: "x"}) { signedOut } }'}
    )
    _no_leak(response)
    assert 400 <= response.status_code < 500


async def test_body_over_the_cap_gets_413(db):
    app = create_app(
        make_settings(limits=make_settings().limits.__class__(max_body_bytes=10_000)), init_db=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            "/graphql", json={"query": "{ __typename }", "variables": {"x": "a" * 20_000}}
        )
    assert response.status_code == 413


async def test_unknown_field_is_a_validation_error_with_a_code(client):
    body = await gql(client, "{ meee { id } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_too_deep_too_many_aliases_too_many_tokens(client, db):
    shallow = make_settings(limits=make_settings().limits.__class__(max_query_depth=2))
    app = create_app(shallow, init_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = (await c.post("/graphql", json={"query": "{ me { department { id } } }"})).json()
        deep = (await c.post("/graphql", json={"query": "{ users { nodes { department { id } } } }"})).json()
    assert "errors" not in ok
    assert "exceeds maximum operation depth" in deep["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }"
    body = await gql(client, aliases)
    assert "aliases" in body["errors"][0]["message"].lower()
    tokens = "{ " + " ".join("__typename" for _ in range(2100)) + " }"
    body = await gql(client, tokens)
    assert "tokens" in body["errors"][0]["message"].lower()


@pytest.mark.parametrize(
    "bad_id", ["", "garbage", base64.b64encode(b"Nope:1").decode(), base64.b64encode(b"User:x").decode()]
)
async def test_node_with_a_bad_id_is_null(client, bad_id):
    body = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": bad_id})
    assert body.get("errors") is None and body["data"]["node"] is None


async def test_production_hides_schema_ide_and_suggestions(db):
    app = create_app(make_settings(environment="production"), init_db=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        intro = (await c.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
        assert "introspection" in intro["errors"][0]["message"].lower()
        typo = (await c.post("/graphql", json={"query": "{ mee { id } }"})).json()
        assert "Did you mean" not in json.dumps(typo)
        page = await c.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()


async def test_development_serves_graphiql(client):
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_unexpected_errors_are_masked(db):
    """A resolver bug (here: a broken principal object) reaches the client as a masked INTERNAL error."""
    settings = make_settings()
    schema = build_schema(production=False)
    context = Context(request=None, response=None, principal=object(), identity=identity_config(settings))  # type: ignore[arg-type]
    result = await schema.execute("{ me { id } }", context_value=context)
    assert result.errors is not None
    assert result.errors[0].message == "Unexpected error."
    assert result.errors[0].extensions == {"code": "INTERNAL"}


async def test_unknown_origins_get_no_cors_grant(client):
    response = await client.options(
        "/graphql", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers


async def test_rate_limit_per_client(db):
    app = create_app(
        make_settings(limits=make_settings().limits.__class__(requests_per_minute=3)), init_db=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        statuses = [
            (await c.post("/graphql", json={"query": "{ __typename }"})).status_code for _ in range(4)
        ]
        assert (await c.get("/healthz")).status_code == 200  # probes are never throttled
    assert statuses == [200, 200, 200, 429]


async def test_cookies_are_never_credentials(client):
    response = await client.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Cookie": "access_token=x; session=y"}
    )
    assert response.json() == {"data": {"me": None}}
