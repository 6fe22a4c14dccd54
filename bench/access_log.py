"""Benchmark: what the access log adds to a staff case read and to the queue page (issue 15, item 3).

    python bench/access_log.py                          # SQLite in a temporary folder
    python bench/access_log.py --database-url postgres://postgres@127.0.0.1:5432/<yours>   # wiped!
    python bench/access_log.py --quick                  # a smoke run
    python bench/access_log.py --write-delay-ms 0       # each request writes its own records

In one process, a uvicorn server on a loopback port and its client (what a console waits for, up to the
last byte of the answer; the access log is written after that): a department's staff member
reads a case in full (its reports, two of them named, one anonymous; its event log with actors; its
photos' EXIF) and the department's first queue page. Each round reads both with the access log on and
with it off (`identity.audit.note_read` replaced by a no-op in this process only), in alternating
order. The figure is the median over rounds of (median with the log / median without) per read.

Target (issue 15): at most 1.05 on both reads. With the log on, a case read's records go to the
group writer (`ACCESS_LOG_WRITE_DELAY_MS`, by default 100 ms: one insert for the reads of that
long), or with a delay of 0 in one insert of its own; the queue page reads no personal data and
writes nothing, so its ratio shows the machine's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from strawberry import relay  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.postgres import reset_postgres  # noqa: E402
from identity import audit  # noqa: E402
from identity.models import AccessRecord  # noqa: E402
from media.models import Photo  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import apply_migrations, tortoise_config  # noqa: E402
from server.seed import load_demo_city, seed_demo  # noqa: E402
from server.settings import Limits, Settings  # noqa: E402

CASE = """query($id: ID!) { node(id: $id) { ... on Case { id reference status
  reports { id reporter anonymous contactConsent description }
  events { kind actorId actor at }
  photos { id exifLocation { latitude longitude } camera { make model } } } } }"""
QUEUE = """query($d: ID!) { departmentQueue(departmentId: $d, orderBy: DUE, first: 50) {
  nodes { id reference status reporterCount dueAt category { code } } } }"""
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  case { id department { id } } userErrors { code message } } }"""
DEVICE = """mutation($k: String!) { deviceRegister(input: {deviceKey: $k}) { accessToken user { id } } }"""


async def post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]


async def resident(client: httpx.AsyncClient) -> tuple[str, int]:
    data = await post(client, DEVICE, {"k": uuid.uuid4().hex + uuid.uuid4().hex}, "")
    user_id = int(relay.GlobalID.from_id(data["deviceRegister"]["user"]["id"]).node_id)
    return data["deviceRegister"]["accessToken"], user_id


async def setup(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """A case of three reporters (one anonymous) with EXIF photos: the staff token, case and queue ids."""
    case_id = department_id = ""
    for n, anonymous in enumerate((False, True, False)):
        token, user_id = await resident(client)
        photos = [
            await Photo.create(
                owner_id=user_id, sha256=uuid.uuid4().hex * 2, format="jpg", byte_size=1000, width=40,
                height=30, exif_latitude=30.26, exif_longitude=120.1, camera_make="PhoneCo", camera_model="P",
            )
        ]  # fmt: skip
        report = {
            "clientId": str(uuid.uuid4()), "categoryCode": "noise.neighbour", "description": f"Noise {n}",
            "location": {"latitude": 30.26, "longitude": 120.10, "crs": "WGS84", "accuracyM": 8.0},
            "anonymous": anonymous, "photoIds": [relay.to_base64("Photo", p.id) for p in photos],
        }  # fmt: skip
        data = await post(client, SUBMIT, {"input": report}, token)
        assert data["submitReport"]["userErrors"] == [], data
        case_id, department_id = (
            data["submitReport"]["case"]["id"],
            data["submitReport"]["case"]["department"]["id"],
        )
    password = load_demo_city()["password"]
    sign_in = 'mutation($p: String!) { signIn(input: {login: "police.west", password: $p}) { accessToken } }'
    signed = await post(client, sign_in, {"p": password}, "")
    return signed["signIn"]["accessToken"], case_id, department_id


async def timed(read: Callable[[], Awaitable[Any]], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await read()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(database_url: str, rounds: int, per_round: int, delay_ms: int) -> dict[str, Any]:
    await apply_migrations(database_url)
    settings = Settings(
        database_url=database_url, media_root=Path(tempfile.mkdtemp()) / "media",
        secret_key="bench-secret-key-0123456789-abcdefghij", environment="development",
        limits=Limits(requests_per_minute=100_000_000, report_submissions_per_hour=100_000_000),
        access_log_write_delay_ms=delay_ms,
    )  # fmt: skip
    ctx = TortoiseContext()
    async with ctx:
        await ctx.init(config=tortoise_config(database_url))
        await seed_demo()
        app = create_app(settings, init_db=False)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, port=port, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            staff, case_id, department_id = await setup(client)
            reads = {
                "case": lambda: post(client, CASE, {"id": case_id}, staff),
                "queue": lambda: post(client, QUEUE, {"d": department_id}, staff),
            }
            real = audit.note_read

            async def no_log(*args: Any, **kwargs: Any) -> None:
                return None

            for read in reads.values():  # warm up both ways
                await timed(read, 20)
            ratios: dict[str, list[float]] = {name: [] for name in reads}
            ms: dict[tuple[str, bool], list[float]] = {(n, on): [] for n in reads for on in (True, False)}
            for r in range(rounds):
                for name, read in reads.items():
                    order = (True, False) if r % 2 == 0 else (False, True)
                    medians = {}
                    for logging_on in order:
                        audit.note_read = real if logging_on else no_log
                        medians[logging_on] = await timed(read, per_round)
                    ratios[name].append(medians[True] / medians[False])
                    for on, median in medians.items():
                        ms[(name, on)].append(median * 1000)
            audit.note_read = real
        server.should_exit = True
        await serving
        await app.state.access_writer.close()  # the server's shutdown does this (lifespan is off here)
        records = await AccessRecord.all().count()
    return {
        "database": database_url.split(":")[0],
        "write_delay_ms": settings.access_log_write_delay_ms,
        "ratio_case_read": round(statistics.median(ratios["case"]), 3),
        "ratio_queue_page": round(statistics.median(ratios["queue"]), 3),
        "records_written": records,
        "p50_ms": {
            f"{n} {'with' if on else 'without'}": round(statistics.median(v), 2) for (n, on), v in ms.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a PostgreSQL database to WIPE and use (default: SQLite)")
    parser.add_argument("--quick", action="store_true")
    default_delay = Settings.model_fields["access_log_write_delay_ms"].default
    parser.add_argument("--write-delay-ms", type=int, default=default_delay, help="ACCESS_LOG_WRITE_DELAY_MS")
    args = parser.parse_args()
    url = args.database_url or f"sqlite://{tempfile.mkdtemp()}/bench.sqlite3"
    if url.startswith("postgres"):
        asyncio.run(reset_postgres(url))
    rounds, per_round = (3, 10) if args.quick else (15, 40)
    print(json.dumps(asyncio.run(measure(url, rounds, per_round, args.write_delay_ms))))


if __name__ == "__main__":
    main()
