"""Shared setup for the reports API tests: the seeded demo city, residents, photos and documents."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
from strawberry import relay

from kernel.geo import CoordinateSystem, from_wgs84
from media.models import Photo
from server.seed import load_demo_city
from tests.graphql_client import gql, gql_data, new_resident, sign_in

# West District of the demo city (WGS-84); the East District starts at longitude 120.15.
WEST = (30.26, 120.10)
EAST = (30.26, 120.20)
OCEAN = (25.0, 130.0)

SUBMIT = """
mutation($input: SubmitReportInput!) {
  submitReport(input: $input) {
    report { id clientId description location { latitude longitude } originalLocation { latitude longitude crs }
             evidence photoIds observedAt }
    case { id reference status version reporterCount reportCount responseDueAt resolutionDueAt routingReason
           department { code } category { code } }
    joinedExistingCase
    userErrors { code field message }
  }
}"""


def db_id(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


def public_case_id(case_global_id: str) -> str:
    return relay.to_base64("PublicCase", db_id(case_global_id))


async def resident(client: httpx.AsyncClient) -> tuple[str, int]:
    token = await new_resident(client)
    me = await gql_data(client, "{ me { id } }", token=token)
    return token, db_id(me["me"]["id"])


async def demo_sign_in(client: httpx.AsyncClient, username: str) -> str:
    return (await sign_in(client, username, load_demo_city()["password"]))["accessToken"]


async def new_photo(owner_id: int) -> str:
    photo = await Photo.create(
        owner_id=owner_id, sha256=secrets.token_hex(32), format="jpeg", byte_size=1000, width=40, height=30
    )
    return relay.to_base64("Photo", photo.id)


def report_input(
    category: str = "noise.construction",
    at: tuple[float, float] = WEST,
    crs: CoordinateSystem = CoordinateSystem.WGS84,
    **extra: Any,
) -> dict[str, Any]:
    lat, lon = from_wgs84(at[0], at[1], crs)
    return {
        "clientId": str(uuid.uuid4()),
        "categoryCode": category,
        "description": "Pile driving all night",
        "location": {"latitude": lat, "longitude": lon, "crs": crs.value, "accuracyM": 8.0},
        **extra,
    }


async def submit(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = await gql(client, SUBMIT, {"input": payload}, token=token)
    assert "errors" not in body, body
    return body["data"]["submitReport"]


async def submit_ok(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    result = await submit(client, token, payload)
    assert result["userErrors"] == [], result["userErrors"]
    return result
