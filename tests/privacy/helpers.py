"""Shared pieces of the privacy tests: GraphQL with a chosen request id, and the access log as an admin reads it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graphql_client import GraphQLError

ACCESS_LOG = """query($first: Int!, $userId: ID, $kind: AccessKind, $subject: ID, $refused: Boolean) {
  accessLog(first: $first, userId: $userId, kind: $kind, subject: $subject, refused: $refused) {
    nodes { id userId role kind subjectType subjectId purpose requestId at refused } } }"""


async def gql_with_id(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """POST a document with an X-Request-ID; the `data` of an answer that must have no errors."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        raise GraphQLError(body["errors"])
    return body["data"]


async def access_log(client: httpx.AsyncClient, admin: str, **filters: Any) -> list[dict[str, Any]]:
    data = await gql_with_id(client, ACCESS_LOG, {"first": 100, **filters}, admin)
    return data["accessLog"]["nodes"]
