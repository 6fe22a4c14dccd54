"""The standard `georeport` client from PyPI against a real server (uvicorn on 127.0.0.1), in JSON and
XML: it lists services, reads a definition, lists requests with every filter it has and reads one back.

georeport 0.3.1 has no call to post a request or read a token, so those go over plain HTTP here, as
any client's form post would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from georeport import GeoReport
from tortoise.context import TortoiseContext

from server.seed import load_demo_city
from tests.graphql_client import gql_sync
from tests.open311.helpers import CREATE_KEY, WEST
from tests.servers import Server

SIGN_IN = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }"


@pytest.fixture
def server(tmp_path: Path, db: TortoiseContext) -> Iterator[Server]:
    # `db` empties the database first: on PostgreSQL the server shares it with the tests before.
    started = Server(tmp_path, "--seed-demo", name="open311")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def post(http: httpx.Client, key: str, code: str, lat: float, token: str) -> dict[str, Any]:
    form = {
        "api_key": key,
        "service_code": code,
        "lat": str(lat),
        "long": str(WEST[1]),
        "client_token": token,
    }
    if code == "odor.industrial":
        form["attribute[intensity]"] = "3"
    response = http.post("/open311/v2/requests.json", data=form)
    assert response.status_code == 201, response.text
    [record] = response.json()
    return record


def as_list(value: Any) -> list[Any]:
    """xmltodict gives one element as a dict and several as a list."""
    return value if isinstance(value, list) else [value]


def test_the_georeport_client_works_against_a_real_server(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        login = {"login": "admin", "password": load_demo_city()["password"]}
        admin = gql_sync(http, SIGN_IN, {"input": login})["signIn"]["accessToken"]
        values = {"name": "12345 platform", "scopes": ["open311:write"]}
        key = gql_sync(http, CREATE_KEY, {"input": values}, admin)["serviceAccountCreate"]["key"]
        noise = post(http, key, "noise.construction", WEST[0], uuid.uuid4().hex)
        odor = post(http, key, "odor.industrial", WEST[0] + 0.01, uuid.uuid4().hex)
        ids = [noise["service_request_id"], odor["service_request_id"]]
        assert all(ids)
        by_token = http.get(f"/open311/v2/tokens/{odor['token']}.json").json()
        assert by_token[0]["service_request_id"] == ids[1]

    now = datetime.now(UTC)
    window = {
        "start_date": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for fmt in ("json", "xml"):
        client = GeoReport(f"{server.url}/open311/v2", output_format=fmt)
        services = as_list(client.get_service_list())
        assert "noise.construction" in {s["service_code"] for s in services}
        definition = client.get_service_definition("odor.industrial")
        attributes = (
            definition["attributes"] if fmt == "json" else as_list(definition["attributes"]["attribute"])
        )
        assert {a["code"] for a in attributes} >= {"intensity", "recurring"}

        def listed(**filters: str) -> list[str]:
            found = client.get_service_requests(**filters)  # noqa: B023 (called within the loop)
            return [r["service_request_id"] for r in as_list(found or [])]

        assert listed() == ids[::-1]
        assert listed(service_request_id=",".join(ids)) == ids[::-1]
        assert listed(service_code="odor.industrial") == [ids[1]]
        assert listed(status="open") == ids[::-1]
        assert listed(**window) == ids[::-1]
        assert listed(service_code="noise.construction", status="open", **window) == [ids[0]]
        one = client.get_service_request(ids[0])
        assert one["service_code"] == "noise.construction" and one["status"] == "open"
        assert one["agency_responsible"]
