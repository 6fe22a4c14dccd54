"""A tiny GraphQL-over-HTTP client for tests, the way a phone or console would call the API."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from identity.models import Role
from identity.service import create_user


class GraphQLError(AssertionError):
    pass


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """POST a document; return the whole response body (`data` and maybe `errors`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def gql_sync(http: httpx.Client, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    """The same over a blocking client, for tests that drive a real server beside a blocking tool."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = http.post("/graphql", json={"query": query, "variables": variables}, headers=headers).json()
    assert "errors" not in body, body
    return body["data"]


async def gql_data(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """The `data` of a response that must have no errors."""
    body = await gql(client, query, variables, token)
    if body.get("errors"):
        raise GraphQLError(body["errors"])
    return body["data"]


SIGN_IN = """
mutation($input: SignInInput!) {
  signIn(input: $input) { accessToken refreshToken user { id role } userErrors { code field message } }
}"""

DEVICE_REGISTER = """
mutation($input: DeviceRegisterInput!) {
  deviceRegister(input: $input) { accessToken refreshToken user { id role } userErrors { code message } }
}"""


async def sign_in(client: httpx.AsyncClient, login: str, password: str) -> dict[str, Any]:
    data = await gql_data(client, SIGN_IN, {"input": {"login": login, "password": password}})
    assert data["signIn"]["userErrors"] == [], data
    return data["signIn"]


async def new_account(
    client: httpx.AsyncClient, role: Role, username: str, department_id: int | None = None, **extra: Any
) -> str:
    """Create an account directly in the database (setup), then sign in over HTTP; returns the access token."""
    password = "correct horse battery"
    await create_user(role=role, username=username, password=password, department_id=department_id, **extra)
    return (await sign_in(client, username, password))["accessToken"]


async def new_resident(client: httpx.AsyncClient) -> str:
    data = await gql_data(client, DEVICE_REGISTER, {"input": {"deviceKey": secrets.token_urlsafe(32)}})
    return data["deviceRegister"]["accessToken"]
