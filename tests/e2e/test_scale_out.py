"""It runs for a province: two API processes and a delivery worker on PostgreSQL, Redis and an
S3-protocol store (moto), with a resident, a staff member and a chief going to both processes in
turn; then one process is killed in the middle of a resident's chunked upload and the resident
resumes on the other."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import IS_POSTGRES, REDIS_URL
from tests.e2e.conftest import City, eventually
from tests.e2e.helpers import step
from tests.graphql_client import gql_data, new_resident
from tests.media.phone import auth, finish, jpeg, start
from tests.media.s3_server import (
    S3Server,
    s3_server,  # noqa: F401 (a session fixture: moto's S3 server)
)
from tests.reports.helpers import WEST, demo_sign_in, report_input, submit_ok

pytestmark = pytest.mark.skipif(
    not IS_POSTGRES, reason="several processes on one database: PostgreSQL (SQLite runs one process)"
)

METRICS_TOKEN = "scale-out-metrics-token"
TUS_PATCH = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}

APPEND = """mutation($input: PatrolTrackAppendInput!) { patrolTrackAppend(input: $input) {
  stored duplicates userErrors { code field message } } }"""
START_PATROL = """mutation($input: PatrolStartInput!) { patrolStart(input: $input) {
  patrol { id status } userErrors { code field message } } }"""
FINISH_PATROL = """mutation($input: PatrolFinishInput!) { patrolFinish(input: $input) {
  patrol { id status metrics { distanceM validPointCount } } userErrors { code field message } } }"""
PATROL = """query($id: ID!) { node(id: $id) { ... on Patrol { status pointCount } } }"""
CASE = """query($id: ID!) { node(id: $id) { ... on Case { status reports { photos { id } } } } }"""


@pytest.fixture
async def redis_reachable() -> AsyncIterator[None]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    finally:
        await client.aclose()
    yield


def _path(url: str) -> str:
    return urlsplit(url).path


async def _patch(client: httpx.AsyncClient, token: str, url: str, offset: int, body: bytes) -> httpx.Response:
    return await client.patch(
        _path(url), content=body, headers={**TUS_PATCH, **auth(token), "Upload-Offset": str(offset)}
    )


async def _offset(client: httpx.AsyncClient, token: str, url: str) -> int:
    response = await client.head(_path(url), headers={"Tus-Resumable": "1.0.0", **auth(token)})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


async def _resume(client: httpx.AsyncClient, token: str, url: str, data: bytes, within: float = 60) -> int:
    """What a phone does after losing its connection: ask the offset, send the rest; a 409 while the
    dead process's hold on the upload lasts means "try again shortly"."""
    deadline = asyncio.get_running_loop().time() + within
    attempts = 0
    while True:
        offset = await _offset(client, token, url)
        if offset == len(data):
            return attempts
        response = await _patch(client, token, url, offset, data[offset:])
        attempts += 1
        if response.status_code == 204:
            continue
        assert response.status_code == 409, response.text
        assert asyncio.get_running_loop().time() < deadline, "the upload was never released"
        await asyncio.sleep(0.5)


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


async def test_two_processes_and_a_worker_serve_everyone_and_an_upload_survives_a_killed_process(
    city: City,
    s3_server: S3Server,  # noqa: F811 (the fixture imported above)
    redis_reachable: None,
) -> None:
    bucket = s3_server.new_bucket(f"scale-{uuid.uuid4().hex[:12]}")
    env = {
        "MEDIA_STORAGE": "s3",
        "S3_ENDPOINT": s3_server.endpoint,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "S3_PATH_STYLE": "true",
        "REDIS_URL": REDIS_URL,
        "DELIVERY_WORKER_IN_PROCESS": "false",  # the worker process plans and sends
        "METRICS_TOKEN": METRICS_TOKEN,
        "UPLOAD_CHUNK_LEASE_SECONDS": "3",
    }
    a = await city.server(**env)
    b = await city.server(**env)
    await city.worker(**env)
    both = (a, b)
    try:
        for api in both:
            ready = await api.get("/readyz")
            assert ready.json() == {"database": "ok", "media": "ok", "redis": "ok", "status": "ok"}

        # --- a resident: an account on A, a photo in chunks to A and B in turn, the report on B ----
        resident = await new_resident(a)
        photo = jpeg(size=(1600, 1200))
        started = await start(b, resident, photo)
        assert started["userErrors"] == [], started
        upload = started["upload"]
        size = 64 * 1024
        for index, offset in enumerate(range(0, len(photo), size)):
            response = await _patch(
                both[index % 2], resident, upload["url"], offset, photo[offset : offset + size]
            )
            assert response.status_code == 204, response.text
        finished = await finish(a, resident, upload["id"])
        assert finished["userErrors"] == [], finished
        photo_id = finished["photo"]["id"]
        submitted = await submit_ok(
            b, resident, report_input("noise.neighbour", WEST, description="Loud music", photoIds=[photo_id])
        )
        case_id = submitted["case"]["id"]
        assert submitted["case"]["department"]["code"] == "police-west"
        assert any(key.startswith("originals/") or "/originals/" in key for key in s3_server.keys(bucket))

        # --- a staff member: each step on the other process, the photo read back through both ------
        staff = await demo_sign_in(b, "police.west")
        for api, action in zip((a, b, a), ("ACCEPT", "START", "RESOLVE"), strict=True):
            extra = {"note": "Spoke to the neighbours"} if action == "RESOLVE" else {}
            await step(api, staff, case_id, action, **extra)
        for api in both:
            node = (await gql_data(api, CASE, {"id": case_id}, staff))["node"]
            assert node["status"] == "RESOLVED"
            assert [p["id"] for p in node["reports"][0]["photos"]] == [photo_id]
        display = finished["photo"]["urls"]["display"]
        for api in both:
            assert (await api.get(_path(display), headers=auth(staff))).status_code in (200, 302, 307)

        # --- a chief: a patrol started on A, its track in batches to both, finished on B ----------
        chief = await demo_sign_in(a, "chief.village")
        areas = await gql_data(b, "{ patrolAreas(first: 10) { nodes { id code } } }", {}, chief)
        area = next(x for x in areas["patrolAreas"]["nodes"] if x["code"] == "R-QH-01")
        began = datetime.now(UTC) - timedelta(minutes=30)
        patrol = (
            await gql_data(
                a,
                START_PATROL,
                {
                    "input": {
                        "clientId": str(uuid.uuid4()),
                        "areaId": area["id"],
                        "mode": "FOOT",
                        "startedAt": began.isoformat(),
                    }
                },
                chief,
            )
        )["patrolStart"]
        assert patrol["userErrors"] == [], patrol
        patrol_id = patrol["patrol"]["id"]
        points: list[dict[str, Any]] = [
            {
                "seq": i,
                "t": (began + timedelta(seconds=10 * i)).isoformat(),
                "latitude": 30.3 - 0.00005 * i,
                "longitude": 120.06 + 0.0002 * i,
                "accuracy": 5.0,
            }
            for i in range(120)
        ]
        for index in range(0, len(points), 30):
            api = both[(index // 30) % 2]
            appended = (
                await gql_data(
                    api,
                    APPEND,
                    {"input": {"patrolId": patrol_id, "points": points[index : index + 30]}},
                    chief,
                )
            )["patrolTrackAppend"]
            assert appended["userErrors"] == [] and appended["stored"] == 30, appended
        # A retry of a batch on the other process stores nothing twice.
        again = (await gql_data(b, APPEND, {"input": {"patrolId": patrol_id, "points": points[:30]}}, chief))[
            "patrolTrackAppend"
        ]
        assert (again["stored"], again["duplicates"]) == (0, 30)
        ended = began + timedelta(seconds=10 * len(points))
        finished_patrol = (
            await gql_data(
                b, FINISH_PATROL, {"input": {"patrolId": patrol_id, "finishedAt": ended.isoformat()}}, chief
            )
        )["patrolFinish"]
        assert finished_patrol["userErrors"] == [], finished_patrol
        for api in both:
            node = (await gql_data(api, PATROL, {"id": patrol_id}, chief))["node"]
            assert node == {"status": "FINISHED", "pointCount": 120}

        # --- the worker planned every change: the outbox has nothing waiting on either process -----
        async def outbox_empty() -> bool:
            for api in both:
                text = (await api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
                if _metric(text, 'envcase_outbox_lag_seconds{stage="planned"}') != 0.0:
                    return False
            return True

        await eventually(outbox_empty, within=60, what="the worker plans the outbox")

        # --- A is killed in the middle of another resident's chunk; the resident resumes on B ------
        second = await new_resident(b)
        picture = jpeg(size=(1800, 1350), seed=7)
        started = await start(a, second, picture)
        assert started["userErrors"] == [], started
        url = started["upload"]["url"]
        first_chunk = 96 * 1024
        assert (await _patch(a, second, url, 0, picture[:first_chunk])).status_code == 204

        sent_some = asyncio.Event()
        hold = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield picture[first_chunk : first_chunk + 32 * 1024]
            sent_some.set()
            await hold.wait()  # set once the process is dead: the rest meets a closed connection
            yield picture[first_chunk + 32 * 1024 :]

        cut = asyncio.ensure_future(
            a.patch(
                _path(url),
                content=slow_body(),
                headers={**TUS_PATCH, **auth(second), "Upload-Offset": str(first_chunk)},
            )
        )
        await asyncio.wait_for(sent_some.wait(), 10)
        await asyncio.sleep(0.5)  # the server is reading the chunk
        await asyncio.to_thread(city.servers[0].kill)
        hold.set()
        with pytest.raises(httpx.TransportError):
            await asyncio.wait_for(cut, 10)

        assert await _offset(b, second, url) == first_chunk  # what A had recorded before it died
        attempts = await _resume(b, second, url, picture)
        assert attempts >= 1
        done = await finish(b, second, url.rsplit("/", 1)[1])
        assert done["userErrors"] == [], done
        report = await submit_ok(
            b,
            second,
            report_input("noise.neighbour", WEST, description="Again", photoIds=[done["photo"]["id"]]),
        )
        assert report["case"]["id"]
        text = (await b.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
        assert (_metric(text, "envcase_photos_accepted_total") or 0) >= 1
    except BaseException:
        print(city.logs())
        raise
