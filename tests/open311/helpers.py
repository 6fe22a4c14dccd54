"""Helpers of the Open311 tests: keys made by an admin over GraphQL, and requests posted as a client would."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.graphql_client import gql_data
from tests.reports.helpers import demo_sign_in

CREATE_KEY = """
mutation($input: ServiceAccountCreateInput!) {
  serviceAccountCreate(input: $input) { key serviceAccount { id } userErrors { code message } }
}"""

V2 = "/open311/v2"
# West District of the demo city: routed by a rule, so the case is public at once.
WEST = (30.26, 120.10)


async def make_key(client: httpx.AsyncClient, *scopes: str, per_minute: int = 10_000) -> tuple[str, str]:
    """(key, service account id) of a new service account with `scopes`."""
    admin = await demo_sign_in(client, "admin")
    values = {
        "name": "12345 platform",
        "scopes": list(scopes or ("open311:write",)),
        "requestsPerMinute": per_minute,
    }
    created = (await gql_data(client, CREATE_KEY, {"input": values}, token=admin))["serviceAccountCreate"]
    assert created["userErrors"] == [], created
    return created["key"], created["serviceAccount"]["id"]


def request_form(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "service_code": "noise.construction",
        "lat": str(WEST[0]),
        "long": str(WEST[1]),
        "description": "Piling at night",
        "client_token": uuid.uuid4().hex,
        **extra,
    }


async def post_request(client: httpx.AsyncClient, key: str, **extra: Any) -> httpx.Response:
    return await client.post(f"{V2}/requests.json", data=request_form(key, **extra))
