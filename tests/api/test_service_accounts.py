"""Service accounts over GraphQL: admins create, rotate and revoke API keys; a key with graphql:read
runs read-only queries as an anonymous caller would, within its own budget."""

from __future__ import annotations

import re
from typing import Any

import httpx

from identity.models import Role, ServiceAccount
from tests.graphql_client import gql, gql_data, new_account

CREATE = """
mutation($input: ServiceAccountCreateInput!) {
  serviceAccountCreate(input: $input) {
    key serviceAccount { id name prefix scopes requestsPerMinute lastUsedAt revokedAt }
    userErrors { code field message }
  }
}"""

ROTATE = """
mutation($input: ServiceAccountRotateInput!) {
  serviceAccountRotate(input: $input) { key serviceAccount { id rotatedAt } userErrors { code field } }
}"""

REVOKE = """
mutation($input: ServiceAccountRevokeInput!) {
  serviceAccountRevoke(input: $input) { serviceAccount { id revokedAt } userErrors { code field } }
}"""

LIST = "{ serviceAccounts(first: 10) { nodes { id name prefix scopes lastUsedAt revokedAt } } }"

KEY = re.compile(r"evk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


async def create(client: httpx.AsyncClient, token: str, **values: Any) -> dict[str, Any]:
    values = {"name": "City GIS", "scopes": ["graphql:read"], **values}
    return (await gql_data(client, CREATE, {"input": values}, token=token))["serviceAccountCreate"]


async def with_key(client: httpx.AsyncClient, key: str, query: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {key}"})


async def test_an_admin_creates_a_key_that_is_shown_once_and_stored_hashed(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    created = await create(client, admin, scopes=["open311:write", "graphql:read", "open311:write"])
    assert created["userErrors"] == []
    key, account = created["key"], created["serviceAccount"]
    assert KEY.fullmatch(key)
    assert account["scopes"] == ["graphql:read", "open311:write"]
    assert key.startswith(f"evk_{account['prefix']}_")
    assert account["lastUsedAt"] is None and account["requestsPerMinute"] == 600
    row = await ServiceAccount.get(prefix=account["prefix"])
    assert key.split("_", 2)[2] not in row.secret_hash  # only a hash is stored
    listed = (await gql_data(client, LIST, token=admin))["serviceAccounts"]["nodes"]
    assert [a["prefix"] for a in listed] == [account["prefix"]]
    assert "key" not in listed[0]


async def test_a_read_key_runs_queries_as_anonymous_and_never_mutations(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    key = (await create(client, admin))["key"]
    answer = await with_key(client, key, "{ me { id } }")
    assert answer.status_code == 200 and answer.json() == {"data": {"me": None}}
    listed = await with_key(client, key, LIST)  # admin-only data stays hidden
    assert listed.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    mutation = 'mutation { serviceAccountCreate(input: {name: "x", scopes: ["graphql:read"]}) { key } }'
    refused = (await with_key(client, key, mutation)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "data" not in refused or refused["data"] is None
    assert await ServiceAccount.all().count() == 1
    accounts = (await gql_data(client, LIST, token=admin))["serviceAccounts"]["nodes"]
    assert accounts[0]["lastUsedAt"] is not None


async def test_keys_without_the_scope_malformed_or_unknown_are_refused(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    writer = (await create(client, admin, scopes=["open311:write"]))["key"]
    no_scope = await with_key(client, writer, "{ me { id } }")
    assert no_scope.status_code == 403 and no_scope.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad in ("evk_", "evk_nothex000000_" + "a" * 43, writer[:-1] + ("A" if writer[-1] != "A" else "B")):
        refused = await with_key(client, bad, "{ me { id } }")
        assert refused.status_code == 401, bad
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_rotation_replaces_the_key_and_revocation_ends_it(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    created = await create(client, admin)
    old, account_id = created["key"], created["serviceAccount"]["id"]
    rotated = (await gql_data(client, ROTATE, {"input": {"id": account_id}}, token=admin))[
        "serviceAccountRotate"
    ]
    new = rotated["key"]
    assert rotated["userErrors"] == [] and KEY.fullmatch(new) and new != old
    assert new.split("_")[1] == old.split("_")[1]  # same prefix
    assert (await with_key(client, old, "{ me { id } }")).status_code == 401
    assert (await with_key(client, new, "{ me { id } }")).status_code == 200
    revoked = (await gql_data(client, REVOKE, {"input": {"id": account_id}}, token=admin))[
        "serviceAccountRevoke"
    ]
    assert revoked["userErrors"] == [] and revoked["serviceAccount"]["revokedAt"]
    assert (await with_key(client, new, "{ me { id } }")).status_code == 401
    again = (await gql_data(client, ROTATE, {"input": {"id": account_id}}, token=admin))[
        "serviceAccountRotate"
    ]
    assert again["key"] is None and again["userErrors"] == [{"code": "CONFLICT", "field": ["input", "id"]}]


async def test_only_admins_manage_keys_and_bad_input_is_a_user_error(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    dispatcher = await new_account(client, Role.DISPATCHER, "dispatch1")
    refused = await gql_data(client, CREATE, {"input": {"name": "x", "scopes": []}}, token=dispatcher)
    assert refused["serviceAccountCreate"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert (await gql(client, LIST, token=dispatcher))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = await create(client, admin, name=" ", scopes=["root"], requestsPerMinute=0)
    assert bad["key"] is None
    assert sorted(e["field"][-1] for e in bad["userErrors"]) == ["name", "requestsPerMinute", "scopes"]
    assert {e["code"] for e in bad["userErrors"]} == {"INVALID"}
    assert await ServiceAccount.all().count() == 0


async def test_a_key_has_its_own_request_budget(client: httpx.AsyncClient) -> None:
    admin = await new_account(client, Role.ADMIN, "admin1")
    slow = (await create(client, admin, requestsPerMinute=2))["key"]
    fast = (await create(client, admin, name="Dashboard"))["key"]
    statuses = [(await with_key(client, slow, "{ me { id } }")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await with_key(client, slow, "{ me { id } }")
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert (await with_key(client, fast, "{ me { id } }")).status_code == 200
