"""Exports over the public API: started and followed through GraphQL, run by the runner the server and
`python -m server worker` use, downloaded through the signed link, read back as a spreadsheet would."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import pytest_asyncio
from tortoise.context import TortoiseContext

from exports.jobs import ExportConfig, ExportRunner, claim, prune_expired, run_job
from exports.models import ExportJob
from identity.models import ServiceAccount, User
from kernel import clock
from reports.lifecycle import Status
from reports.models import Case
from server.exports_http import export_config
from server.seed import seed_demo
from server.settings import Settings
from tests.conftest import DATABASE_URL, make_settings
from tests.graphql_client import gql_data, new_resident
from tests.open311.helpers import make_key
from tests.reports.helpers import db_id, demo_sign_in, working_cases

BOM = b"\xef\xbb\xbf"
SUMMARY = "夜间施工噪音扰民"

START = """
mutation($input: ExportStartInput!) {
  exportStart(input: $input) {
    export { id kind format status rows totalRows progress downloadUrl }
    userErrors { code field message }
  }
}"""
CANCEL = """
mutation($input: ExportCancelInput!) {
  exportCancel(input: $input) { export { id status rows } userErrors { code field message } }
}"""
NODE = """
query($id: ID!) {
  node(id: $id) { ... on Export { id status rows totalRows progress downloadUrl byteSize error expiresAt } }
}"""

MINE = """
query($first: Int!, $after: String, $status: ExportStatus) {
  myExports(first: $first, after: $after, status: $status) {
    edges { node { id status } } pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(media_root=tmp_path / "media", export_root=tmp_path / "exports", export_batch_rows=7)


@pytest_asyncio.fixture
async def demo(db: TortoiseContext) -> None:
    await seed_demo()


@pytest.fixture
def config(settings: Settings) -> ExportConfig:
    return export_config(settings)


async def cases_of(department: str, count: int, status: Status = Status.ACCEPTED) -> list[int]:
    ids = await working_cases(count, clock.now() + timedelta(days=3), department=department, status=status)
    await Case.filter(id__in=ids).update(summary=SUMMARY)
    return ids


async def start(client: httpx.AsyncClient, token: str, **given: Any) -> dict[str, Any]:
    values = {"clientId": str(uuid.uuid4()), "kind": "CASES", "format": "CSV", **given}
    data = await gql_data(client, START, {"input": values}, token=token)
    return data["exportStart"]


async def finished(
    client: httpx.AsyncClient, token: str, config: ExportConfig, export_id: str
) -> dict[str, Any]:
    """Run what is queued, as the server's runner does, and read the export back."""
    while await ExportRunner(config).run_once() is not None:
        pass
    return (await gql_data(client, NODE, {"id": export_id}, token=token))["node"]


async def download(client: httpx.AsyncClient, token: str, url: str) -> httpx.Response:
    return await client.get(url, headers={"Authorization": f"Bearer {token}"})


async def export_file(client: httpx.AsyncClient, token: str, config: ExportConfig, **given: Any) -> bytes:
    started = await start(client, token, **given)
    assert started["userErrors"] == [], started
    assert started["export"]["status"] == "QUEUED"
    node = await finished(client, token, config, started["export"]["id"])
    assert node["status"] == "DONE", node
    assert node["progress"] == 1.0 and node["downloadUrl"]
    response = await download(client, token, node["downloadUrl"])
    assert response.status_code == 200, response.text
    return response.content


def read_csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(BOM)
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


pytestmark = pytest.mark.usefixtures("demo")


async def test_case_csv_has_a_bom_and_readable_chinese(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    ids = await cases_of("police-west", 20)
    await cases_of("urban-west", 3)
    token = await demo_sign_in(client, "police.west")
    rows = read_csv(await export_file(client, token, config))
    # Staff get their own department's cases only, every one of them (three batches of 7).
    assert len(rows) == 20
    assert {r["department_code"] for r in rows} == {"police-west"}
    assert rows[0]["summary"] == SUMMARY
    assert all("\ufffd" not in r["category_name_zh"] and r["category_name_zh"] for r in rows)
    assert [r["reference"] for r in rows] == [
        c.reference for c in await Case.filter(id__in=ids).order_by("id")
    ]
    assert datetime.fromisoformat(rows[0]["created_at"]).tzinfo is not None
    job = await ExportJob.get(owner__username="police.west")
    assert (job.rows, job.total_rows) == (20, 20)


async def test_xlsx_reads_back(client: httpx.AsyncClient, config: ExportConfig) -> None:
    await cases_of("eco", 9)
    token = await demo_sign_in(client, "admin")
    content = await export_file(client, token, config, format="XLSX")
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[0] == "reference" and "category_name_zh" in header
    assert len(body) == 9
    record = dict(zip(header, body[0], strict=True))
    assert record["summary"] == SUMMARY and record["department_code"] == "eco"
    assert isinstance(record["created_at"], datetime)


async def test_geojson_is_a_feature_collection_of_points(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("eco", 8)
    token = await demo_sign_in(client, "dispatcher")
    collection = json.loads(await export_file(client, token, config, format="GEOJSON"))
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 8
    feature = collection["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    lon, lat = feature["geometry"]["coordinates"]
    assert (lat, lon) == (feature["properties"]["latitude"], feature["properties"]["longitude"])
    assert feature["properties"]["summary"] == SUMMARY
    # Statistics have no location: refused as GeoJSON, nothing queued.
    refused = await start(client, token, kind="STATISTICS", format="GEOJSON",
                          period={"from": "2026-03-01", "to": "2026-04-01"})  # fmt: skip
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID"] and refused["export"] is None


async def test_filters_and_a_filter_matching_nothing(client: httpx.AsyncClient, config: ExportConfig) -> None:
    await cases_of("police-west", 4, Status.ACCEPTED)
    await cases_of("police-west", 2, Status.IN_PROGRESS)
    await cases_of("eco", 3, Status.IN_PROGRESS)
    token = await demo_sign_in(client, "admin")
    police = (await gql_data(client, "{ departments(first: 50) { nodes { id code } } }", token=token))[
        "departments"
    ]["nodes"]
    police_id = next(d["id"] for d in police if d["code"] == "police-west")
    rows = read_csv(await export_file(client, token, config, departmentId=police_id,
                                      cases={"statuses": ["IN_PROGRESS"]}))  # fmt: skip
    assert [(r["department_code"], r["status"]) for r in rows] == [("police-west", "IN_PROGRESS")] * 2
    rows = read_csv(await export_file(client, token, config, cases={"statuses": ["IN_PROGRESS"]}))
    assert len(rows) == 5
    # Nothing matches: a file with the header only, not an error.
    content = await export_file(client, token, config, cases={"text": "no case says this"})
    assert content.startswith(BOM) and content.decode("utf-8-sig").strip().startswith("reference,status")
    assert read_csv(content) == []
    # A bad filter is the caller's mistake, named in their input.
    bad = await start(client, token, cases={"text": "x" * 101})
    assert [(e["code"], e["field"]) for e in bad["userErrors"]] == [("INVALID", ["input", "cases", "text"])]
    # Staff asking for another department's cases learn nothing of it.
    staff = await demo_sign_in(client, "urban.west")
    refused = await start(client, staff, departmentId=police_id)
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]


async def test_a_retry_starts_nothing_twice(client: httpx.AsyncClient) -> None:
    token = await demo_sign_in(client, "admin")
    values = {"clientId": "same-token", "kind": "CASES", "format": "CSV"}
    first = await gql_data(client, START, {"input": values}, token=token)
    again = await gql_data(client, START, {"input": values}, token=token)
    assert first["exportStart"]["export"]["id"] == again["exportStart"]["export"]["id"]
    assert await ExportJob.all().count() == 1
    other = await gql_data(client, START, {"input": {**values, "format": "XLSX"}}, token=token)
    assert [e["code"] for e in other["exportStart"]["userErrors"]] == ["CONFLICT"]


async def test_cancel_midway_removes_the_partial_file(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("eco", 30)
    token = await demo_sign_in(client, "admin")
    started = await start(client, token)
    export_id = started["export"]["id"]
    job = await claim(config)
    assert job is not None
    cancelled: list[dict[str, Any]] = []

    async def cancel_after_first_batch(done: int, total: int) -> None:
        if not cancelled:  # the owner cancels while the runner is between batches
            cancelled.append(await gql_data(client, CANCEL, {"input": {"id": export_id}}, token=token))

    status = await run_job(config, job, cancel_after_first_batch)
    assert status.value == "CANCELLED"
    assert cancelled[0]["exportCancel"]["export"]["status"] == "CANCELLED"
    node = (await gql_data(client, NODE, {"id": export_id}, token=token))["node"]
    assert node["status"] == "CANCELLED" and node["rows"] == 7 and node["downloadUrl"] is None
    assert list(config.root.iterdir()) == []  # no partial file left behind
    # Cancelling again changes nothing; a finished export cannot be cancelled.
    again = await gql_data(client, CANCEL, {"input": {"id": export_id}}, token=token)
    assert again["exportCancel"]["userErrors"] == []
    done = await start(client, token)
    await finished(client, token, config, done["export"]["id"])
    late = await gql_data(client, CANCEL, {"input": {"id": done["export"]["id"]}}, token=token)
    assert [e["code"] for e in late["exportCancel"]["userErrors"]] == ["CONFLICT"]


async def test_links_expire_and_are_their_owners_only(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("eco", 2)
    token = await demo_sign_in(client, "admin")
    started = await start(client, token)
    export_id = started["export"]["id"]
    url = (await finished(client, token, config, export_id))["downloadUrl"]
    assert (await download(client, token, url)).status_code == 200
    # Another user (even an admin) with the owner's link: as if there were no such export.
    dispatcher = await demo_sign_in(client, "dispatcher")
    assert (await download(client, dispatcher, url)).status_code == 404
    assert (await gql_data(client, NODE, {"id": export_id}, token=dispatcher))["node"] is None
    theirs = await gql_data(client, CANCEL, {"input": {"id": export_id}}, token=dispatcher)
    assert [e["code"] for e in theirs["exportCancel"]["userErrors"]] == ["NOT_FOUND"]
    assert (await client.get(url)).status_code == 401
    # A tampered link, then the link past its expiry (15 minutes): refused.
    assert (await download(client, token, url.replace("signature=", "signature=0"))).status_code == 403
    later = datetime.now(UTC) + timedelta(minutes=16)
    clock.set_clock(lambda: later)
    token = await demo_sign_in(client, "admin")
    assert (await download(client, token, url)).status_code == 403
    fresh = (await gql_data(client, NODE, {"id": export_id}, token=token))["node"]["downloadUrl"]
    assert (await download(client, token, fresh)).status_code == 200


async def test_each_reader_lists_their_own_exports_newest_first(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("eco", 2)
    admin = await demo_sign_in(client, "admin")
    ids = [(await start(client, admin))["export"]["id"] for _ in range(3)]
    await finished(client, admin, config, ids[0])  # runs every queued one
    cancelled = (await start(client, admin))["export"]["id"]
    await gql_data(client, CANCEL, {"input": {"id": cancelled}}, token=admin)
    dispatcher = await demo_sign_in(client, "dispatcher")
    theirs = (await start(client, dispatcher))["export"]["id"]

    async def mine(token: str, **given: Any) -> dict[str, Any]:
        return (await gql_data(client, MINE, {"first": 2, **given}, token=token))["myExports"]

    first = await mine(admin)
    assert [e["node"]["id"] for e in first["edges"]] == [cancelled, ids[2]]
    assert first["pageInfo"]["hasNextPage"]
    rest = await mine(admin, after=first["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in rest["edges"]] == [ids[1], ids[0]]
    assert not rest["pageInfo"]["hasNextPage"]
    done = await mine(admin, first=10, status="DONE")
    assert [e["node"]["id"] for e in done["edges"]] == ids[::-1]
    assert [e["node"]["id"] for e in (await mine(dispatcher))["edges"]] == [theirs]
    # Residents export nothing, and so have nothing to list; nobody signed in is asked to.
    body = (await client.post("/graphql", json={"query": MINE, "variables": {"first": 2}})).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    resident = await new_resident(client)
    body = (
        await client.post(
            "/graphql", json={"query": MINE, "variables": {"first": 2}}, headers=bearer(resident)
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_residents_and_the_wrong_readers_are_refused(client: httpx.AsyncClient) -> None:
    resident = await new_resident(client)
    for kind in ("CASES", "STATISTICS", "COMPLIANCE"):
        refused = await start(client, resident, kind=kind, period={"from": "2026-03-01", "to": "2026-04-01"})
        assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"], refused
    chief = await demo_sign_in(client, "chief.village")
    assert [e["code"] for e in (await start(client, chief))["userErrors"]] == ["FORBIDDEN"]
    dispatcher = await demo_sign_in(client, "dispatcher")
    compliance = await start(
        client, dispatcher, kind="COMPLIANCE", period={"from": "2026-03-01", "to": "2026-04-01"}
    )
    assert [e["code"] for e in compliance["userErrors"]] == ["FORBIDDEN"]
    assert await ExportJob.all().count() == 0


async def test_statistics_and_compliance_tables(client: httpx.AsyncClient, config: ExportConfig) -> None:
    staff = await demo_sign_in(client, "eco.staff")
    period = {"from": "2026-03-01", "to": "2026-04-01"}
    content = await export_file(client, staff, config, kind="STATISTICS", format="XLSX", period=period)
    rows = list(
        openpyxl.load_workbook(io.BytesIO(content), read_only=True).active.iter_rows(values_only=True)
    )
    assert rows[0][:2] == ("department_code", "department_name")
    assert rows[-1][0] in ("eco", "TOTAL")  # staff see their own department's figures only
    chief = await demo_sign_in(client, "chief.county")
    rows_c = read_csv(await export_file(client, chief, config, kind="COMPLIANCE", period=period))
    assert rows_c, "the county chief is assessed in March"
    assert {"chief", "rule", "area_code", "required", "done", "met"} <= rows_c[0].keys()
    assert any("郑伟" in r["chief"] for r in rows_c)


async def test_cli_export_shows_progress(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await cases_of("eco", 12)
    out = tmp_path / "cases.csv"
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "DATA_DIR": str(tmp_path), "EXPORT_BATCH_ROWS": "5"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "export", "cases", "--user", "admin", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5/12 rows" in done.stderr and "100.0% 12/12 rows" in done.stderr
    assert "wrote 12 rows" in done.stdout
    assert len(read_csv(out.read_bytes())) == 12
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "export", "cases", "--user", "chief.county", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "error:" in refused.stderr


async def test_the_worker_command_runs_exports(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await cases_of("eco", 6)
    token = await demo_sign_in(client, "admin")
    export_id = (await start(client, token))["export"]["id"]
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DATA_DIR": str(tmp_path),
        "DELIVERY_POLL_SECONDS": "0.1",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "worker", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        node: dict[str, Any] = {}
        deadline = asyncio.get_running_loop().time() + 120  # a loaded CI machine starts it slowly
        while asyncio.get_running_loop().time() < deadline:
            node = (await gql_data(client, NODE, {"id": export_id}, token=token))["node"]
            if node["status"] == "DONE" or worker.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert node["status"] == "DONE" and node["rows"] == 6, node
        assert (tmp_path / "exports").is_dir()
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)


async def test_expired_files_are_removed(client: httpx.AsyncClient, config: ExportConfig) -> None:
    await cases_of("eco", 2)
    token = await demo_sign_in(client, "admin")
    export_id = (await start(client, token))["export"]["id"]
    url = (await finished(client, token, config, export_id))["downloadUrl"]
    assert len(list(config.root.iterdir())) == 1
    later = datetime.now(UTC) + timedelta(hours=25)  # past EXPORT_KEEP_HOURS
    clock.set_clock(lambda: later)
    token = await demo_sign_in(client, "admin")
    assert (await download(client, token, url)).status_code in (403, 410)
    assert (await gql_data(client, NODE, {"id": export_id}, token=token))["node"]["downloadUrl"] is None
    assert await prune_expired(config, later) == 1
    assert list(config.root.iterdir()) == []


async def test_an_owner_who_lost_the_right_gets_a_failed_export(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("police-west", 3)
    token = await demo_sign_in(client, "police.west")
    export_id = (await start(client, token))["export"]["id"]
    # Moved to another department before the job ran: the rights are checked again when it runs.
    await User.filter(username="police.west").update(department_id=None)
    node = await finished(client, token, config, export_id)
    assert node["status"] == "FAILED" and node["error"] and node["downloadUrl"] is None
    assert not list(config.root.glob("*"))  # no file was started


async def test_an_export_key_exports_cases_without_personal_columns(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    ids = await cases_of("police-west", 4)
    await cases_of("eco", 2)
    key, account_id = await make_key(client, "export:read")
    rows = read_csv(await export_file(client, key, config))
    # Every department's cases, as a dispatcher's, but no assignee, no summary, the public place.
    assert len(rows) == 6 and {r["department_code"] for r in rows} == {"police-west", "eco"}
    assert "summary" not in rows[0] and "assignee" not in rows[0] and SUMMARY not in str(rows)
    case = await Case.get(id=ids[0])
    first = next(r for r in rows if r["reference"] == case.reference)
    assert (float(first["latitude"]), float(first["longitude"])) == (
        case.public_latitude,
        case.public_longitude,
    )
    account = await ServiceAccount.get(id=db_id(account_id))
    assert account.last_used_at is not None
    # Its exports are its own: a person's export is missing to it, and its export to the person.
    admin = await demo_sign_in(client, "admin")
    theirs = await start(client, admin)
    assert (await gql_data(client, NODE, {"id": theirs["export"]["id"]}, token=key))["node"] is None
    mine = await start(client, key)
    assert (await gql_data(client, NODE, {"id": mine["export"]["id"]}, token=admin))["node"] is None
    listed = (await gql_data(client, MINE, {"first": 5}, token=key))["myExports"]["edges"]
    assert len(listed) == 2 and listed[0]["node"]["id"] == mine["export"]["id"]  # and the file above
    assert theirs["export"]["id"] not in str(listed)
    cancelled = await gql_data(client, CANCEL, {"input": {"id": mine["export"]["id"]}}, token=key)
    assert cancelled["exportCancel"]["export"]["status"] == "CANCELLED"
    # Cases only: statistics and compliance are for people.
    period = {"from": "2026-01-01", "to": "2026-02-01"}
    for kind in ("STATISTICS", "COMPLIANCE"):
        refused = await start(client, key, kind=kind, period=period)
        assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"], refused
    # Nothing else: no other query, no mutation of another kind.
    body = (await client.post("/graphql", json={"query": "{ me { id } }"}, headers=bearer(key))).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body.get("data") is None


async def test_export_keys_without_the_scope_or_revoked_are_refused(
    client: httpx.AsyncClient, config: ExportConfig
) -> None:
    await cases_of("eco", 2)
    key, account_id = await make_key(client, "export:read")
    started = await start(client, key)
    reader, _ = await make_key(client, "graphql:read")
    values = {"clientId": "x", "kind": "CASES", "format": "CSV"}
    body = (
        await client.post(
            "/graphql", json={"query": START, "variables": {"input": values}}, headers=bearer(reader)
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body.get("data") is None
    hooks, _ = await make_key(client, "webhooks:manage")
    body = (
        await client.post(
            "/graphql", json={"query": START, "variables": {"input": values}}, headers=bearer(hooks)
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body.get("data") is None
    admin = await demo_sign_in(client, "admin")
    revoke = "mutation($input: ServiceAccountRevokeInput!) { serviceAccountRevoke(input: $input) { userErrors { code } } }"
    await gql_data(client, revoke, {"input": {"id": account_id}}, token=admin)
    # Revoked: refused at the door, and its queued export fails when run instead of being written.
    gone = await client.post("/graphql", json={"query": "{ __typename }"}, headers=bearer(key))
    assert gone.status_code == 401 and gone.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    while await ExportRunner(config).run_once() is not None:
        pass
    job = await ExportJob.get(id=db_id(started["export"]["id"]))
    assert job.status.value == "FAILED" and job.file_name is None
    assert await ExportJob.filter(owner_id=job.owner_id).count() == 1


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
