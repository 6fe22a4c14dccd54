"""Trusted documents (persisted operations) through the GraphQL endpoint, as an app and an admin use them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise.context import TortoiseContext

from identity.models import Role, User
from server.app import create_app
from tests.api.test_live_updates import Socket
from tests.conftest import DATABASE_URL, make_settings
from tests.graphql_client import gql_data, new_account, new_resident
from tests.servers import Server, process_env
from trusted.models import TrustedDocument

PUBLIC = "query PublicCategories { categories { code } }"
MUTATION = "mutation Register($input: DeviceRegisterInput!) { deviceRegister(input: $input) { accessToken } }"
REGISTER = """
mutation($input: TrustedDocumentsRegisterInput!) {
  trustedDocumentsRegister(input: $input) { added alreadyRegistered userErrors { code field message } }
}"""


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def doc_id(document: str) -> str:
    return f"sha256:{sha256(document)}"


async def register(client: httpx.AsyncClient, token: str, *documents: str, **ids: str) -> dict[str, Any]:
    items = [{"documentId": ids.get("documentId", doc_id(d)), "document": d} for d in documents]
    data = await gql_data(client, REGISTER, {"input": {"documents": items}}, token)
    return data["trustedDocumentsRegister"]


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> str:
    return await new_account(client, Role.ADMIN, "docs.admin")


async def test_admins_register_documents_all_or_none_and_again_changes_nothing(
    client: httpx.AsyncClient, admin: str
) -> None:
    resident = await new_resident(client)
    refused = await register(client, resident, PUBLIC)
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]

    wrong = {
        "input": {
            "documents": [
                {"documentId": doc_id(PUBLIC), "document": PUBLIC},
                {"documentId": doc_id(PUBLIC), "document": MUTATION},  # the id of another text
                {"documentId": "md5:abc", "document": MUTATION},
            ]
        }
    }
    payload = (await gql_data(client, REGISTER, wrong, admin))["trustedDocumentsRegister"]
    assert payload["added"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID", ["input", "documents", "1", "documentId"]),
        ("INVALID", ["input", "documents", "2", "documentId"]),
    ]
    assert await TrustedDocument.all().count() == 0  # the good one was not saved either

    assert await register(client, admin, PUBLIC, MUTATION) == {
        "added": 2,
        "alreadyRegistered": 0,
        "userErrors": [],
    }
    assert await register(client, admin, PUBLIC) == {"added": 0, "alreadyRegistered": 1, "userErrors": []}
    assert await TrustedDocument.all().count() == 2


async def test_a_registered_document_runs_by_id_in_both_forms(client: httpx.AsyncClient, admin: str) -> None:
    await register(client, admin, PUBLIC)
    by_id = await client.post("/graphql", json={"documentId": doc_id(PUBLIC)})
    assert by_id.status_code == 200 and by_id.json() == {"data": {"categories": []}}
    apollo = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(PUBLIC)}}}
    assert (await client.post("/graphql", json=apollo)).json() == {"data": {"categories": []}}
    # Apollo's second try sends the query beside its hash: run when they match, refused when not.
    with_query = await client.post("/graphql", json={**apollo, "query": PUBLIC})
    assert with_query.json() == {"data": {"categories": []}}
    mismatch = await client.post("/graphql", json={**apollo, "query": "{ me { id } }"})
    assert mismatch.status_code == 400 and mismatch.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_an_unknown_or_malformed_id_is_a_clear_error(client: httpx.AsyncClient, method: str) -> None:
    async def send(document_id: str) -> httpx.Response:
        if method == "GET":
            return await client.get("/graphql", params={"documentId": document_id})
        return await client.post("/graphql", json={"documentId": document_id})

    unknown = await send(doc_id("query Never { me { id } }"))
    assert unknown.status_code == 200
    assert unknown.json()["errors"] == [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
    if method == "GET":
        assert unknown.headers["cache-control"] == "no-store"
    for malformed in ("sha256:xyz", "sha1:" + "0" * 40, ""):
        answer = await send(malformed)
        assert answer.status_code == 400, malformed
        assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_registered_queries_by_get_are_cached_only_when_public(
    client: httpx.AsyncClient, admin: str
) -> None:
    await register(client, admin, PUBLIC)
    anonymous = await client.get("/graphql", params={"documentId": doc_id(PUBLIC)}, headers={"accept": "*/*"})
    assert anonymous.status_code == 200 and anonymous.json() == {"data": {"categories": []}}
    assert anonymous.headers["cache-control"] == "public, max-age=60"
    assert "authorization" in anonymous.headers["vary"].lower()
    apollo = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256(PUBLIC)}})
    by_hash = await client.get("/graphql", params={"extensions": apollo}, headers={"accept": "*/*"})
    assert by_hash.json() == {"data": {"categories": []}}  # not GraphiQL, which a bare GET of */* gets
    assert by_hash.headers["cache-control"] == "public, max-age=60"

    resident = await new_resident(client)
    signed_in = await client.get(
        "/graphql", params={"documentId": doc_id(PUBLIC)}, headers={"authorization": f"Bearer {resident}"}
    )
    assert signed_in.status_code == 200 and signed_in.json() == {"data": {"categories": []}}
    assert signed_in.headers["cache-control"] == "private, no-store"


async def test_get_refuses_mutations_and_documents_sent_in_full(
    client: httpx.AsyncClient, admin: str
) -> None:
    await register(client, admin, MUTATION)
    users = await User.all().count()
    variables = json.dumps({"input": {"deviceKey": "k7Vq0m1xQn3bS2hZr9fT6wYpLc4dE8aJ"}})
    by_get = await client.get("/graphql", params={"documentId": doc_id(MUTATION), "variables": variables})
    assert by_get.status_code == 405 and by_get.headers["allow"] == "POST"
    assert await User.all().count() == users  # nothing ran
    raw = await client.get("/graphql", params={"query": PUBLIC})
    assert raw.status_code == 405 and raw.headers["allow"] == "POST"
    raw_mutation = await client.get("/graphql", params={"query": MUTATION, "variables": variables})
    assert raw_mutation.status_code == 405
    assert await User.all().count() == users


@pytest.fixture
async def trusted_only(db: TortoiseContext, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(media_root=tmp_path / "media", trusted_documents_only=True), init_db=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_trusted_documents_only_runs_registered_operations(
    client: httpx.AsyncClient, admin: str, trusted_only: httpx.AsyncClient
) -> None:
    await register(client, admin, PUBLIC)
    refused = await trusted_only.post("/graphql", json={"query": "{ categories { code } }"})
    assert refused.status_code == 200
    assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    assert "data" not in refused.json() or refused.json()["data"] is None
    # A lone surrogate (valid JSON, no UTF-8) has no registered hash either; it is no server error.
    surrogate = await trusted_only.post(
        "/graphql",
        content=b'{"query": "{ categories { code } } # \\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    # A registered document runs by id, or sent in full (its hash is registered).
    assert (await trusted_only.post("/graphql", json={"documentId": doc_id(PUBLIC)})).json() == {
        "data": {"categories": []}
    }
    assert (await trusted_only.post("/graphql", json={"query": PUBLIC})).json() == {
        "data": {"categories": []}
    }


def test_the_command_line_registers_a_persisted_documents_file(tmp_path: Path, db: TortoiseContext) -> None:
    manifest = tmp_path / "persisted-documents.json"

    def cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", "register-documents", str(manifest)],
            env={**os.environ, "DATABASE_URL": DATABASE_URL, "DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # GraphQL Codegen's client preset writes bare hex keys; `sha256:` ids are read the same.
    manifest.write_text(json.dumps({sha256(PUBLIC): PUBLIC, doc_id(MUTATION): MUTATION}))
    done = cli()
    assert done.returncode == 0, done.stderr
    assert "registered 2 new, 0 already registered" in done.stdout
    again = cli()
    assert again.returncode == 0 and "registered 0 new, 2 already registered" in again.stdout

    manifest.write_text(json.dumps({sha256(PUBLIC): MUTATION}))
    wrong = cli()
    assert wrong.returncode == 1 and "input/documents/0/documentId" in wrong.stderr


@pytest.fixture
def trusted_only_server(tmp_path: Path) -> Iterator[Server]:
    """A real server with TRUSTED_DOCUMENTS_ONLY; its documents registered from the command line."""
    env = {"TRUSTED_DOCUMENTS_ONLY": "true", "REDIS_URL": ""}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({doc_id(PUBLIC): PUBLIC}))
    done = subprocess.run(
        [sys.executable, "-m", "server", "register-documents", str(manifest)],
        env=process_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    server = Server(tmp_path, env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


async def test_the_websocket_follows_the_same_rules(trusted_only_server: Server) -> None:
    socket = await Socket.open(trusted_only_server, None)
    try:
        await socket.send({"id": "by-id", "type": "subscribe", "payload": {"documentId": doc_id(PUBLIC)}})
        assert await socket.receive() == {
            "id": "by-id",
            "type": "next",
            "payload": {"data": {"categories": []}},
        }
        assert (await socket.receive())["type"] == "complete"
        refusals = {
            "unregistered": {"query": "{ categories { code } }"},
            "unknown": {"documentId": doc_id("{ me { id } }")},
            "malformed": {"documentId": "sha256:nope"},
        }
        codes = {}
        for op, payload in refusals.items():
            await socket.send({"id": op, "type": "subscribe", "payload": payload})
            message = await socket.receive()
            assert message["id"] == op and message["type"] == "error", message
            codes[op] = message["payload"][0]["extensions"]["code"]
        assert codes == {
            "unregistered": "PERSISTED_QUERY_REQUIRED",
            "unknown": "PERSISTED_QUERY_NOT_FOUND",
            "malformed": "BAD_REQUEST",
        }
    finally:
        await socket.connection.close()
