"""`application/graphql-response+json` (GraphQL over HTTP): answered when the client prefers it, with the
spec's status codes; `application/json` stays the default."""

from __future__ import annotations

import httpx
import pytest

from tests.graphql_client import new_resident

GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFERS = {"accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"}


async def post(client: httpx.AsyncClient, body: dict[str, object], **headers: str) -> httpx.Response:
    return await client.post("/graphql", json=body, headers=headers)


async def test_a_query_that_ran_is_200_in_the_preferred_media_type(client: httpx.AsyncClient) -> None:
    answer = await post(client, {"query": "{ categories { code } }"}, **PREFERS)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    assert answer.json() == {"data": {"categories": []}}


async def test_an_error_during_execution_is_still_200(client: httpx.AsyncClient) -> None:
    # An anonymous caller may not list accounts: the field fails, the request ran.
    answer = await post(
        client, {"query": "{ categories { code } users(first: 1) { nodes { id } } }"}, **PREFERS
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    assert "data" in answer.json() and answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ categories { code "}, "GRAPHQL_VALIDATION_FAILED"),  # does not parse
        ({"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED"),  # does not validate
        (  # a variable of the wrong type
            {
                "query": "query($first: Int!) { departments(first: $first) { nodes { code } } }",
                "variables": {"first": "x"},
            },
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ({"documentId": "sha256:" + "0" * 64}, "PERSISTED_QUERY_NOT_FOUND"),
    ],
)
async def test_a_request_that_did_not_run_is_400_without_data(
    client: httpx.AsyncClient, body: dict[str, object], code: str
) -> None:
    answer = await post(client, body, **PREFERS)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    assert "data" not in answer.json()
    assert answer.json()["errors"][0]["extensions"]["code"] == code
    # The legacy media type answers the same request 200, with `data: null`, as before.
    legacy = await post(client, body, accept="application/json")
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", f"application/json, {GRAPHQL_RESPONSE}", f"{GRAPHQL_RESPONSE};q=0"],
)
async def test_application_json_stays_the_default(client: httpx.AsyncClient, accept: str | None) -> None:
    headers = {"authorization": f"Bearer {await new_resident(client)}"}
    if accept is not None:
        headers["accept"] = accept
    answer = await client.post("/graphql", json={"query": "{ me { role } }"}, headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"data": {"me": {"role": "CITIZEN"}}}
