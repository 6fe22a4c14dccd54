"""Benchmark: report submission over HTTP, and duplicate search + routing at a million cases.

    python bench/report_submit.py                      # SQLite: 100,000 cases, 1,000 submissions; 1M micro
    python bench/report_submit.py --database-url postgres://postgres@127.0.0.1:5432/bench --reset
    python bench/report_submit.py --quick              # tiny sizes, a CI smoke run (seconds)

The HTTP part starts one uvicorn worker on 127.0.0.1 against a database holding 50 jurisdiction
polygons (64-vertex districts), their departments, the national routing table and N existing cases,
then sends submissions (each with 2 photo ids, a random place and category) from several concurrent
clients and reports submissions/s and p50/p99 latency. The micro part measures, in process, one
`route` plus one `find_duplicate` (bbox on the composite index, exact haversine) per point.

Targets (issue): >= 150 submissions/s on SQLite with one worker; duplicate search + routing <= 2 ms at
1,000,000 cases. `--reset` drops every table of the PostgreSQL database given (creating it if missing):
use a scratch one.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import Tortoise  # noqa: E402

from bench.support.postgres import reset_postgres  # noqa: E402
from bench.support.runner import PRODUCTION_SERVER_ENV, free_port, pin_client, pinned, stop  # noqa: E402
from kernel import clock  # noqa: E402
from kernel.geo import LatLon  # noqa: E402
from media.models import Photo  # noqa: E402
from reports.categories import load_categories  # noqa: E402
from reports.datafile import read_json  # noqa: E402
from reports.lifecycle import Status  # noqa: E402
from reports.models import Case, Category  # noqa: E402
from reports.routing import Jurisdiction, load_routing_rules  # noqa: E402
from reports.service import find_duplicate  # noqa: E402
from reports.store import build_snapshot, seed_routing_data  # noqa: E402
from server.db import apply_migrations, tortoise_config  # noqa: E402

LAT0, LON0 = 30.0, 120.0  # south-west corner of the benchmark city
ROWS, COLS = 5, 10  # 50 districts
DISTRICT_DEG = 0.05  # about 5.5 km
MIX: list[tuple[str, dict[str, Any]]] = [
    ("noise.construction", {}),
    ("noise.commercial", {"source": "shop_loudspeaker"}),
    ("odor.restaurant_fumes", {"intensity": 3}),
    ("waste.overflowing_bins", {"days_uncollected": 3}),
    ("light.led_billboard", {}),
]
REGISTER = "mutation($i: DeviceRegisterInput!) { deviceRegister(input: $i) { accessToken user { id } } }"
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  report { id } case { id reference status reporterCount } userErrors { code field message } } }"""


@dataclass(frozen=True)
class Sizes:
    cases: int
    submissions: int
    concurrency: int
    residents: int
    micro_cases: int
    micro_queries: int


FULL = Sizes(100_000, 1_000, 8, 100, 1_000_000, 2_000)
QUICK = Sizes(2_000, 60, 4, 6, 20_000, 200)


def district(row: int, col: int) -> Jurisdiction:
    """A 64-vertex rounded district, so point-in-polygon does real work."""
    c_lat = LAT0 + (row + 0.5) * DISTRICT_DEG
    c_lon = LON0 + (col + 0.5) * DISTRICT_DEG
    half = DISTRICT_DEG / 2
    ring = []
    for i in range(64):
        a = 2 * math.pi * i / 64
        # A superellipse: nearly square (districts tile) with rounded corners.
        x = math.copysign(abs(math.cos(a)) ** 0.2, math.cos(a)) * half
        y = math.copysign(abs(math.sin(a)) ** 0.2, math.sin(a)) * half
        ring.append([c_lon + x, c_lat + y])
    ring.append(ring[0])
    code = f"9800{row}{col}"
    return Jurisdiction.from_geojson(
        code, f"District {row}-{col}", {"type": "Polygon", "coordinates": [ring]}
    )


def random_point(rng: random.Random) -> LatLon:
    return LatLon(
        LAT0 + rng.uniform(0.002, ROWS * DISTRICT_DEG - 0.002),
        LON0 + rng.uniform(0.002, COLS * DISTRICT_DEG - 0.002),
    )


async def seed(url: str, cases: int, rng: random.Random) -> None:
    await Tortoise.init(config=tortoise_config(url))
    city = [
        [LON0, LAT0],
        [LON0 + COLS * DISTRICT_DEG, LAT0],
        [LON0 + COLS * DISTRICT_DEG, LAT0 + ROWS * DISTRICT_DEG],
        [LON0, LAT0 + ROWS * DISTRICT_DEG],
        [LON0, LAT0],
    ]
    places = [Jurisdiction.from_geojson("980000", "Bench City", {"type": "Polygon", "coordinates": [city]})]
    places += [district(r, c) for r in range(ROWS) for c in range(COLS)]
    departments = [
        (f"{kind}-city", kind, kind, "980000")
        for kind in read_json("routing_national.json")["department_kinds"]
        if kind not in ("urban_management", "police")
    ]
    for place in places[1:]:
        departments += [(f"urban-{place.code}", place.name, "urban_management", place.code)]
        departments += [(f"police-{place.code}", place.name, "police", place.code)]
    evidence = {c["code"]: c.get("evidence", {}) for c in read_json("categories.json")["categories"]}
    await seed_routing_data(
        [(c, evidence[c.code]) for c in load_categories()],
        places[:1] + places[1:],
        [(code, name, kind, j) for code, name, kind, j in departments],
        load_routing_rules().rules,
    )
    await insert_cases(cases, rng)
    await Tortoise.close_connections()


async def insert_cases(count: int, rng: random.Random) -> None:
    categories = [c.id for c in await Category.all()]
    now = datetime.now(UTC)
    statuses = [
        Status.ROUTED,
        Status.ACCEPTED,
        Status.IN_PROGRESS,
        Status.CLOSED,
        Status.CLOSED,
        Status.RESOLVED,
    ]
    start = await Case.all().count()
    batch: list[Case] = []
    for i in range(start, count):
        point = random_point(rng)
        at = now - timedelta(hours=rng.uniform(0, 24 * 60))
        batch.append(
            Case(
                reference=f"B-{i:09d}",
                category_id=rng.choice(categories),
                latitude=point.lat,
                longitude=point.lon,
                public_latitude=point.lat,
                public_longitude=point.lon,
                status=rng.choice(statuses),
                version=2,
                routing_reason="bench",
                public=True,
                last_reported_at=at,
                created_at=at,
                updated_at=at,
            )
        )
        if len(batch) == 10_000:
            await Case.bulk_create(batch)
            batch = []
    if batch:
        await Case.bulk_create(batch)


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(200):
            try:
                if (await c.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def http_run(base: str, url: str, sizes: Sizes, rng: random.Random) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        tokens = []
        for _ in range(sizes.residents):
            r = await c.post(
                "/graphql",
                json={
                    "query": REGISTER,
                    "variables": {"i": {"deviceKey": secrets.token_urlsafe(32)}},
                },
            )
            data = r.json()["data"]["deviceRegister"]
            tokens.append((data["accessToken"], int(_node_id(data["user"]["id"]))))
        await Tortoise.init(config=tortoise_config(url))
        jobs = []
        for i in range(sizes.submissions):
            token, user_id = tokens[i % len(tokens)]
            photos = [
                await Photo.create(
                    owner_id=user_id,
                    sha256=secrets.token_hex(32),
                    format="jpeg",
                    byte_size=1,
                    width=1,
                    height=1,
                )
                for _ in range(2)
            ]
            code, evidence = rng.choice(MIX)
            point = random_point(rng)
            jobs.append(
                (
                    token,
                    {
                        "clientId": str(uuid.uuid4()),
                        "categoryCode": code,
                        "description": "bench",
                        "location": {"latitude": point.lat, "longitude": point.lon, "accuracyM": 10.0},
                        "evidence": evidence,
                        "photoIds": [_global("Photo", p.id) for p in photos],
                    },
                )
            )
        await Tortoise.close_connections()

        latencies: list[float] = []
        errors = 0
        queue = list(jobs)

        async def worker() -> None:
            nonlocal errors
            while queue:
                token, payload = queue.pop()
                t0 = time.perf_counter()
                r = await c.post(
                    "/graphql",
                    json={"query": SUBMIT, "variables": {"input": payload}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                latencies.append(time.perf_counter() - t0)
                body = r.json()
                if r.status_code != 200 or body.get("errors") or body["data"]["submitReport"]["userErrors"]:
                    errors += 1
                    if errors <= 3:
                        print("  error:", body, file=sys.stderr)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(sizes.concurrency)))
        wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "rate": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def _node_id(global_id: str) -> str:
    from strawberry import relay

    return relay.GlobalID.from_id(global_id).node_id


def _global(type_name: str, node_id: int) -> str:
    from strawberry import relay

    return relay.to_base64(type_name, node_id)


async def micro(url: str, sizes: Sizes, rng: random.Random) -> dict[str, float]:
    await Tortoise.init(config=tortoise_config(url))
    await insert_cases(sizes.micro_cases, rng)
    snapshot = await build_snapshot(None)
    ids = snapshot.category_ids
    now = clock.now()
    times = []
    for _ in range(sizes.micro_queries):
        code, evidence = rng.choice(MIX)
        category = snapshot.category(code)
        assert category is not None
        point = random_point(rng)
        t0 = time.perf_counter()
        snapshot.router.route((point.lon, point.lat), code, evidence, now)
        await find_duplicate(ids[code], category, point, now)
        times.append(time.perf_counter() - t0)
    total = await Case.all().count()
    await Tortoise.close_connections()
    times.sort()
    return {
        "cases": total,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
        "mean_ms": statistics.fmean(times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CI smoke run")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--reset", action="store_true", help="drop all tables of --database-url first")
    parser.add_argument(
        "--sqlite-options", default="", help="appended to the SQLite URL, e.g. '?synchronous=NORMAL'"
    )
    parser.add_argument("--skip-micro", action="store_true", help="skip the 1M-case duplicate search")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    rng = random.Random(20260310)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    url = args.database_url or f"sqlite://{tmp / 'bench.sqlite3'}{args.sqlite_options}"
    if url.startswith("postgres") and args.reset:
        asyncio.run(reset_postgres(url))
    asyncio.run(apply_migrations(url))
    t0 = time.perf_counter()
    asyncio.run(seed(url, sizes.cases, rng))
    print(f"seeded 50 districts and {sizes.cases:,} cases in {time.perf_counter() - t0:.1f} s")

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp),
        **PRODUCTION_SERVER_ENV,
    }
    server = subprocess.Popen(
        [
            *pinned(),
            sys.executable,
            "-m",
            "uvicorn",
            "server.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    pin_client()
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base))
        result = asyncio.run(http_run(base, url, sizes, rng))
    finally:
        stop(server)
    engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"HTTP submitReport on {engine}, 1 worker, {sizes.concurrency} clients, {sizes.cases:,} cases: "
        f"{result['rate']:.0f}/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"errors {result['errors']}  (target >= 150/s on SQLite)"
    )
    if result["errors"]:
        sys.exit(1)
    if not args.skip_micro:
        m = asyncio.run(micro(url, sizes, rng))
        print(
            f"route + duplicate search at {m['cases']:,} cases on {engine}: p50 {m['p50_ms']:.3f} ms, "
            f"p99 {m['p99_ms']:.3f} ms, mean {m['mean_ms']:.3f} ms  (target <= 2 ms)"
        )


if __name__ == "__main__":
    main()
