"""Every bad input the issue lists gets a typed error with its field path, and leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from media.models import Photo
from reports.models import Case, CaseEvent, Report
from tests.graphql_client import gql
from tests.reports.helpers import SUBMIT, WEST, db_id, new_photo, report_input, resident, submit

pytestmark = pytest.mark.usefixtures("demo")


async def refused(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    result = await submit(client, token, payload)
    assert result["report"] is None and result["case"] is None
    assert result["userErrors"], result
    assert await Report.all().count() == 0
    assert await Case.all().count() == 0
    assert await CaseEvent.all().count() == 0
    return result["userErrors"]


def with_location(**location: Any) -> dict[str, Any]:
    payload = report_input()
    payload["location"] = {**payload["location"], **location}
    return payload


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ({"latitude": 91.0}, "latitude"),
        ({"latitude": -90.5}, "latitude"),
        ({"longitude": 181.0}, "longitude"),
        ({"longitude": 1e308}, "longitude"),
        ({"accuracyM": -1.0}, "accuracyM"),
        ({"accuracyM": 1e9}, "accuracyM"),
    ],
)
async def test_coordinates_out_of_range(
    client: httpx.AsyncClient, location: dict[str, Any], field: str
) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, with_location(**location))
    assert errors[0]["code"] == "INVALID"
    assert errors[0]["field"] == ["input", "location", field]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", '"NaN"', '"north"'])
async def test_non_finite_or_non_numeric_coordinates_never_reach_the_database(
    client: httpx.AsyncClient, literal: str
) -> None:
    """JSON has no NaN, but Python's parser accepts these literals; GraphQL's Float refuses them."""
    token, _ = await resident(client)
    payload = report_input()
    body = json.dumps({"query": SUBMIT, "variables": {"input": payload}})
    body = body.replace(json.dumps(payload["location"]["latitude"]), literal, 1)
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 400), response.text
    result = response.json()
    assert result.get("data") is None
    assert result["errors"][0]["extensions"]["code"] in ("GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST")
    assert "Unexpected" not in result["errors"][0]["message"]
    assert await Report.all().count() == 0


async def test_unknown_category(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, report_input("noise.spaceships"))
    assert errors == [{"code": "INVALID", "field": ["input", "categoryCode"], "message": "No such category."}]


async def test_category_nobody_handles_at_that_point(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    # No rule, national or demo-city, names a department for "other" inside the demo city.
    errors = await refused(client, token, report_input("other.other", WEST))
    assert errors[0]["field"] == ["input", "categoryCode"]
    assert "categoriesAt" in errors[0]["message"]


@pytest.mark.parametrize(
    ("evidence", "field", "message"),
    [
        ({"measured_db": 500}, "measured_db", "must be at most 140"),
        ({"measured_db": "loud"}, "measured_db", "must be a number"),
        ({"recurring": "yes"}, "recurring", "must be true or false"),
        ({"observed_time": "late"}, "observed_time", "must be a time of day like 22:30"),
        ({"colour": "black"}, "colour", "is not a known field for this category"),
    ],
)
async def test_evidence_of_the_wrong_type_or_out_of_range(
    client: httpx.AsyncClient, evidence: dict[str, Any], field: str, message: str
) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, report_input(evidence=evidence))
    assert errors == [{"code": "INVALID", "field": ["input", "evidence", field], "message": message}]


async def test_evidence_must_be_an_object_and_required_fields_present(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, report_input(evidence=[1, 2]))
    assert errors[0]["field"] == ["input", "evidence"]
    errors = await refused(client, token, report_input("odor.industrial", evidence={}))
    assert errors[0]["field"] == ["input", "evidence", "intensity"]


async def test_all_field_errors_come_back_at_once(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    payload = with_location(latitude=91.0)
    payload.update(description="x" * 2001, clientId="short", evidence={"measured_db": 500})
    errors = await refused(client, token, payload)
    assert {tuple(e["field"]) for e in errors} == {
        ("input", "clientId"),
        ("input", "description"),
        ("input", "location", "latitude"),
        ("input", "evidence", "measured_db"),
    }


async def test_photo_that_does_not_exist_or_is_someone_elses(client: httpx.AsyncClient) -> None:
    token, user_id = await resident(client)
    _, stranger_id = await resident(client)
    mine = await new_photo(user_id)
    theirs = await new_photo(stranger_id)
    missing = await new_photo(user_id)
    await Photo.filter(id=db_id(missing)).delete()
    for photos, bad in (([mine, missing], "1"), ([theirs], "0")):
        errors = await refused(client, token, report_input(photoIds=photos))
        assert errors == [
            {"code": "NOT_FOUND", "field": ["input", "photoIds", bad], "message": "No such photo."}
        ]
    # The refused request claimed nothing: the caller's own photo is still unattached.
    assert (await Photo.get(id=db_id(mine))).attached_at is None


async def test_ten_photos_and_ids_of_other_types(client: httpx.AsyncClient) -> None:
    token, user_id = await resident(client)
    photos = [await new_photo(user_id) for _ in range(10)]
    errors = await refused(client, token, report_input(photoIds=photos))
    assert errors[0]["field"] == ["input", "photoIds"]
    assert "At most 9" in errors[0]["message"]
    errors = await refused(client, token, report_input(photoIds=["not-an-id"]))
    assert errors[0]["field"] == ["input", "photoIds", "0"]


async def test_a_100000_character_description_is_refused_cleanly(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, report_input(description="噪" * 100_000))
    # Refused at the input boundary's hard cap, before the form's own rules (2000) are read.
    assert errors == [
        {"code": "INVALID", "field": ["input", "description"], "message": "At most 8000 characters."}
    ]


async def test_observed_time_in_the_future_or_without_zone(client: httpx.AsyncClient) -> None:
    token, _ = await resident(client)
    errors = await refused(client, token, report_input(observedAt="2099-01-01T00:00:00+08:00"))
    assert errors[0]["field"] == ["input", "observedAt"]
    body = await gql(client, SUBMIT, {"input": report_input(observedAt="yesterday")}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
