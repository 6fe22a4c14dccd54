"""Shared setup for the reports API tests: the seeded demo city, residents, photos and documents."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from strawberry import relay

from kernel.geo import CoordinateSystem, from_wgs84
from media.models import Photo
from reports.lifecycle import Status
from reports.models import Case, Category, Department
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


async def working_cases(
    count: int,
    due: datetime,
    *,
    category: str = "noise.neighbour",
    department: str = "police-west",
    status: Status = Status.ACCEPTED,
) -> list[int]:
    """`count` cases a department is working, with the resolution deadline `due`, written in bulk
    (many at once for the concurrency test and the escalation benchmark)."""
    category_id = (await Category.get(code=category)).id
    department_id = (await Department.get(code=department)).id
    started = due - timedelta(days=7)
    tag = uuid.uuid4().hex[:8]
    rows = [
        Case(
            reference=f"D{tag}{i:08d}",
            category_id=category_id,
            latitude=WEST[0],
            longitude=WEST[1],
            public_latitude=WEST[0],
            public_longitude=WEST[1],
            status=status,
            version=3,
            department_id=department_id,
            response_due_at=started + timedelta(days=1),
            resolution_due_at=due,
            dispatched_at=started,
            status_changed_at=started,
            responded_at=started,
            public=True,
            last_reported_at=started,
            created_at=started,
            updated_at=started,
        )
        for i in range(count)
    ]
    await Case.bulk_create(rows, batch_size=1000)
    created = Case.filter(reference__startswith=f"D{tag}").order_by("id")
    return [case_id for (case_id,) in await created.values_list("id")]
