"""Open311 GeoReport v2 conformance: the spec's resources, roots and field names in JSON and XML, the
error list with the right status for every bad input, create-once posting, and the public view's privacy."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kernel.geo import haversine_m
from reports.lifecycle import Status
from reports.models import Case, Report
from reports.transparency import public_status_notes
from tests.graphql_client import gql_data
from tests.open311.helpers import V2, WEST, make_key, post_request, request_form
from tests.reports.helpers import demo_sign_in

pytestmark = pytest.mark.usefixtures("demo")

REQUEST_KEYS = [
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
]  # fmt: skip


def assert_errors(response: httpx.Response, status: int, *words: str) -> list[dict[str, Any]]:
    """The spec's error answer: a JSON list of {code, description}, code equal to the HTTP status."""
    assert response.status_code == status, response.text
    errors = response.json()
    assert isinstance(errors, list) and errors
    assert all(set(e) == {"code", "description"} and e["code"] == status for e in errors)
    text = " ".join(e["description"] for e in errors)
    assert all(word in text for word in words), text
    return errors


async def test_services_list_the_catalog_in_json_and_xml(client: httpx.AsyncClient) -> None:
    services = (await client.get(f"{V2}/services.json")).json()
    by_code = {s["service_code"]: s for s in services}
    assert by_code["noise.construction"]["metadata"] is True
    assert set(by_code["noise.construction"]) >= {
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert by_code["noise.construction"]["type"] == "realtime"
    chinese = (await client.get(f"{V2}/services.json", headers={"Accept-Language": "zh-CN"})).json()
    assert {s["service_code"]: s["service_name"] for s in chinese}["noise.construction"] != by_code[
        "noise.construction"
    ]["service_name"]
    xml = await client.get(f"{V2}/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == "services" and {e.tag for e in root} == {"service"}
    assert sorted(e.findtext("service_code") or "" for e in root) == sorted(by_code)
    assert {e.findtext("metadata") for e in root} == {"true"}  # every demo category has evidence


async def test_xml_is_chosen_by_accept_alone_and_json_is_the_default(client: httpx.AsyncClient) -> None:
    by_accept = await client.get(f"{V2}/services", headers={"Accept": "application/xml"})
    assert ET.fromstring(by_accept.content).tag == "services"
    weighted = await client.get(f"{V2}/services", headers={"Accept": "application/json;q=0.5, text/xml"})
    assert ET.fromstring(weighted.content).tag == "services"
    assert isinstance((await client.get(f"{V2}/services", headers={"Accept": "*/*"})).json(), list)
    errors = await client.get(f"{V2}/services/nope", headers={"Accept": "text/xml"})
    root = ET.fromstring(errors.content)
    assert errors.status_code == 404 and root.tag == "errors"
    assert [(e.findtext("code"), bool(e.findtext("description"))) for e in root] == [("404", True)]


async def test_a_definition_lists_the_evidence_fields_as_attributes(client: httpx.AsyncClient) -> None:
    definition = (await client.get(f"{V2}/services/odor.open_burning.json")).json()
    assert definition["service_code"] == "odor.open_burning"
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert attributes["intensity"]["datatype"] == "number" and attributes["intensity"]["required"] is True
    assert attributes["recurring"]["datatype"] == "singlevaluelist"
    assert [v["key"] for v in attributes["recurring"]["values"]] == ["true", "false"]
    assert "plastic" in [v["key"] for v in attributes["material"]["values"]]
    assert [a["order"] for a in definition["attributes"]] == list(range(1, len(attributes) + 1))
    assert all(a["variable"] is True for a in definition["attributes"])
    root = ET.fromstring((await client.get(f"{V2}/services/odor.open_burning.xml")).content)
    assert root.tag == "service_definition"
    material = next(a for a in root.iter("attribute") if a.findtext("code") == "material")
    assert "plastic" in [v.findtext("key") for v in material.iter("value")]
    assert_errors(await client.get(f"{V2}/services/no.such.json"), 404, "no.such")


async def test_a_posted_request_is_created_once_and_reads_back_by_id_and_token(
    client: httpx.AsyncClient,
) -> None:
    key, _ = await make_key(client)
    form = request_form(key, **{"attribute[measured_db]": "85", "attribute[recurring]": "true"})
    first = await client.post(f"{V2}/requests.json", data=form)
    assert first.status_code == 201, first.text
    [posted] = first.json()
    assert posted["service_request_id"] and posted["token"]
    again = await client.post(f"{V2}/requests.json", data=form)
    assert again.status_code == 200 and again.json() == [posted]
    assert await Case.all().count() == 1 and await Report.all().count() == 1
    report = await Report.get()
    assert report.evidence == {"measured_db": 85.0, "recurring": True}
    changed = await client.post(f"{V2}/requests.json", data={**form, "description": "other words"})
    assert_errors(changed, 409, "client_token")

    [found] = (await client.get(f"{V2}/requests/{posted['service_request_id']}.json")).json()
    assert list(found) == REQUEST_KEYS
    case = await Case.get()
    assert found["service_request_id"] == case.reference and found["status"] == "open"
    assert found["service_code"] == "noise.construction" and found["agency_responsible"]
    assert found["expected_datetime"] and case.resolution_due_at is not None
    assert datetime.fromisoformat(found["expected_datetime"]) == case.resolution_due_at.replace(microsecond=0)
    assert datetime.fromisoformat(found["requested_datetime"]).minute == 0  # to the hour, as on the map
    assert found["description"] is None and "Piling" not in (await client.get(f"{V2}/requests.json")).text
    [by_token] = (await client.get(f"{V2}/tokens/{posted['token']}.json")).json()
    assert by_token == {"service_request_id": posted["service_request_id"], "token": posted["token"]}
    xml = ET.fromstring((await client.get(f"{V2}/tokens/{posted['token']}.xml")).content)
    assert xml.tag == "service_requests" and xml.findtext("request/token") == posted["token"]
    assert_errors(await client.get(f"{V2}/tokens/1-nosuchtoken.json"), 404)
    assert_errors(await client.get(f"{V2}/requests/2020-999999.json"), 404)


@pytest.mark.parametrize(
    ("change", "status", "word"),
    [
        ({"service_code": "no.such"}, 400, "service_code"),
        ({"service_code": None}, 400, "service_code"),
        ({"lat": "95"}, 400, "lat"),
        ({"long": "200"}, 400, "long"),
        ({"lat": "north"}, 400, "lat"),
        ({"lat": "nan"}, 400, "lat"),
        ({"lat": None, "long": None, "address_string": "1 Main St"}, 400, "geocoder"),
        ({"lat": None}, 400, "lat"),
        ({"media_url": "http://10.0.0.1/huge.jpg"}, 400, "media_url"),
        ({"attribute[measured_db]": "loud"}, 400, "attribute[measured_db]"),
        ({"attribute[measured_db]": "500"}, 400, "attribute[measured_db]"),
        ({"attribute[recurring]": "maybe"}, 400, "attribute[recurring]"),
        ({"attribute[colour]": "red"}, 400, "attribute[colour]"),
        ({"service_code": "odor.industrial"}, 400, "attribute[intensity]"),
        ({"service_code": "odor.industrial", "attribute[intensity]": "2.5"}, 400, "attribute[intensity]"),
        ({"client_token": "short"}, 400, "client_token"),
        ({"description": "x" * 5000}, 400, "description"),
        ({"api_key": "not-a-key"}, 401, "API key"),
        ({"api_key": "evk_000000000000_" + "a" * 43}, 401, "API key"),
        ({"api_key": None}, 401, "api_key"),
    ],
)
async def test_bad_posts_get_the_error_list_and_create_nothing(
    client: httpx.AsyncClient, change: dict[str, str | None], status: int, word: str
) -> None:
    key, _ = await make_key(client)
    form = {k: v for k, v in {**request_form(key), **change}.items() if v is not None}
    assert_errors(await client.post(f"{V2}/requests.json", data=form), status, word)
    assert await Report.all().count() == 0


async def test_keys_revoked_or_without_the_scope_or_over_budget_are_refused(
    client: httpx.AsyncClient,
) -> None:
    reader, _ = await make_key(client, "graphql:read")
    assert_errors(await post_request(client, reader), 403, "open311:write")
    key, account_id = await make_key(client, "open311:write", per_minute=2)
    assert (await post_request(client, key)).status_code == 201
    assert (await post_request(client, key)).status_code == 201
    limited = await post_request(client, key)
    assert_errors(limited, 429)
    assert int(limited.headers["retry-after"]) > 0
    admin = await demo_sign_in(client, "admin")
    revoke = "mutation($input: ServiceAccountRevokeInput!) { serviceAccountRevoke(input: $input) { userErrors { code } } }"
    await gql_data(client, revoke, {"input": {"id": account_id}}, token=admin)
    assert_errors(await post_request(client, key), 401)
    assert await Report.all().count() == 2


async def test_requests_filter_by_every_parameter(client: httpx.AsyncClient) -> None:
    key, _ = await make_key(client)
    ids = []
    for code, (lat, lon) in [
        ("noise.construction", WEST),
        ("noise.construction", (30.30, 120.10)),
        ("waste.overflowing_bins", WEST),
    ]:
        posted = await post_request(client, key, service_code=code, lat=str(lat), long=str(lon))
        ids.append(posted.json()[0]["service_request_id"])
    assert all(ids)
    await Case.filter(reference=ids[2]).update(status=Status.CLOSED)

    async def listed(**params: Any) -> list[str]:
        response = await client.get(f"{V2}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    assert await listed() == ids[::-1]  # newest first
    assert await listed(service_request_id=f"{ids[0]},{ids[2]}") == [ids[2], ids[0]]
    assert await listed(service_code="waste.overflowing_bins") == [ids[2]]
    assert await listed(service_code="noise.construction,waste.overflowing_bins") == ids[::-1]
    assert await listed(status="closed") == [ids[2]]
    assert await listed(status="open") == [ids[1], ids[0]]
    now = datetime.now(UTC)
    assert (
        await listed(start_date=(now - timedelta(hours=1)).isoformat(), end_date=now.isoformat()) == ids[::-1]
    )
    assert await listed(end_date=(now - timedelta(days=2)).isoformat().replace("+00:00", "Z")) == []
    assert await listed(lat=WEST[0], long=WEST[1], radius=500) == [ids[2], ids[0]]
    assert await listed(page_size=2) == [ids[2], ids[1]]
    assert await listed(page_size=2, page=2) == [ids[0]]
    assert await listed(page_size=2, page=3) == []
    xml = ET.fromstring((await client.get(f"{V2}/requests", headers={"Accept": "text/xml"})).content)
    assert xml.tag == "service_requests" and [r.findtext("service_request_id") for r in xml] == ids[::-1]
    assert [e.tag for e in xml[0]] == REQUEST_KEYS


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"service_code": "no.such"}, "service_code"),
        ({"status": "pending"}, "status"),
        ({"lat": "95", "long": "120"}, "lat"),
        ({"lat": "30", "long": "200"}, "long"),
        ({"lat": "30"}, "long"),
        ({"radius": "100"}, "radius"),
        ({"lat": "30", "long": "120", "radius": "0"}, "radius"),
        ({"lat": "30", "long": "120", "radius": "10000000"}, "radius"),
        ({"lat": "30", "long": "120", "radius": "inf"}, "radius"),
        ({"start_date": "2026-05-02T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "90 days"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2026-01-01T00:00:00"}, "time zone"),
        ({"end_date": "0001-01-01T00:00:00+05:00"}, "end_date"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "100000"}, "page_size"),
        ({"page": "0"}, "page"),
        ({"page": "1e3"}, "page"),
        ({"service_request_id": ",".join(str(n) for n in range(101))}, "service_request_id"),
    ],
)
async def test_bad_filters_get_the_error_list(
    client: httpx.AsyncClient, params: dict[str, str], word: str
) -> None:
    assert_errors(await client.get(f"{V2}/requests.json", params=params), 400, word)
    xml = await client.get(f"{V2}/requests.xml", params=params)
    assert xml.status_code == 400 and ET.fromstring(xml.content).tag == "errors"


async def test_home_related_requests_show_at_the_coarse_grid(client: httpx.AsyncClient) -> None:
    key, _ = await make_key(client)
    lat, lon = WEST[0] + 0.00123, WEST[1] + 0.00077
    posted = await post_request(client, key, service_code="noise.neighbour", lat=str(lat), long=str(lon))
    assert posted.status_code == 201, posted.text
    request_id = posted.json()[0]["service_request_id"]
    [found] = (await client.get(f"{V2}/requests/{request_id}.json")).json()
    case = await Case.get(reference=request_id)
    assert (found["lat"], found["long"]) == (case.public_latitude, case.public_longitude)
    assert (found["lat"], found["long"]) != (case.latitude, case.longitude)
    assert 1 < haversine_m(lat, lon, found["lat"], found["long"]) < 200


async def test_private_cases_are_not_listed_and_tokens_wait_for_them(client: httpx.AsyncClient) -> None:
    key, _ = await make_key(client)
    # Outside every jurisdiction: triage, private until a dispatcher routes it.
    posted = await post_request(client, key, lat="25.0", long="130.0")
    assert posted.status_code == 201, posted.text
    [record] = posted.json()
    assert record["service_request_id"] is None and record["token"]
    assert (await client.get(f"{V2}/requests.json")).json() == []
    [by_token] = (await client.get(f"{V2}/tokens/{record['token']}.json")).json()
    assert by_token["service_request_id"] is None
    reference = (await Case.get()).reference
    assert_errors(await client.get(f"{V2}/requests/{reference}.json"), 404)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("DELETE", "requests.json", 405),
        ("POST", "services.json", 405),
        ("GET", "nothing.json", 404),
        ("GET", "services/a/b.json", 404),
        ("GET", "requests.csv", 404),
    ],
)
async def test_unknown_resources_and_methods(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    assert_errors(await client.request(method, f"{V2}/{path}"), status)


async def test_a_body_that_is_not_a_form_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{V2}/requests.json",
        content=b"--x\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code in (400, 401)
    assert isinstance(response.json(), list)


async def test_status_notes_tell_the_public_handling_in_json_and_xml(client: httpx.AsyncClient) -> None:
    key, _ = await make_key(client)
    posted = await post_request(client, key)
    request_id = posted.json()[0]["service_request_id"]
    [found] = (await client.get(f"{V2}/requests/{request_id}.json")).json()
    case = await Case.get(reference=request_id)
    assert found["status_notes"] == public_status_notes(case)
    assert found["status_notes"].startswith("Received on ") and "Assigned to" in found["status_notes"]

    resolved_at = case.created_at + timedelta(hours=2)
    await Case.filter(id=case.id).update(status=Status.RESOLVED, resolved_at=resolved_at, rework_count=1)
    case = await Case.get(id=case.id)
    expected = public_status_notes(case)
    assert expected and "Resolved on" in expected and "rework once" in expected
    [listed] = (await client.get(f"{V2}/requests.json")).json()
    assert listed["status_notes"] == expected and listed["status"] == "closed"
    xml = ET.fromstring((await client.get(f"{V2}/requests.xml")).content)
    assert xml.findtext("request/status_notes") == expected
    [by_id] = ET.fromstring((await client.get(f"{V2}/requests/{request_id}.xml")).content)
    assert by_id.findtext("status_notes") == expected
    # Staff's words never reach it: the resolution note is for the reporter.
    await Case.filter(id=case.id).update(resolution_note="Called Mr Wang at 13800000000")
    assert "Wang" not in (await client.get(f"{V2}/requests.json")).text
