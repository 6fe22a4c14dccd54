"""Benchmark: Open311 `GET requests.json` (a 100-request page over 10,000 public requests) and
`POST requests.json`, against one raw SQL query for the same page in the same run.

    python bench/open311_http.py            # SQLite, then PostgreSQL (BENCH_POSTGRES_URL)
    python bench/open311_http.py --quick    # CI smoke run: fewer rounds (under a minute)

The server is a real uvicorn, one worker, production settings (pinned to CPU 1 where `taskset` exists;
the benchmark runs on CPU 0). The page is `requests.json?page_size=100&page=k` for k cycling over the
first 10 pages, newest first within the default 90-day window; the anchor is the same page by one
hand-written SQL statement through aiosqlite / asyncpg. Before timing, the two must name the same
requests in the same order. Requests are sent one at a time; p50 and p99 over every request, and the
server process's CPU per request (from /proc: its time on CPU 1, whatever else loads the machine). POST: a
new request (a new client token) each time in the demo city's West District, with one attribute, as a
service account with `open311:write`; duplicates within 250 m join an existing case, as in the app.

Targets (issue 16): GET p50 <= 3 ms; POST p50 <= 3 ms without photos.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import (  # noqa: E402
    PRODUCTION_SERVER_ENV,
    each_database,
    free_port,
    fresh_database,
    pin_client,
    pinned,
    process_cpu_seconds,
    stop,
)
from bench.support.seeding import load_cases  # noqa: E402
from bench.support.timing import percentile, timed  # noqa: E402
from identity import service_accounts  # noqa: E402
from identity.models import User  # noqa: E402
from identity.service import Principal  # noqa: E402
from reports.models import Category, Department  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import seed_demo  # noqa: E402

REQUESTS = 10_000
PAGE = 100
PAGES = 10
ID_BASE = 10_000_000
RAW = """
SELECT c.reference, c.status, c.category_id, d.name, c.created_at, c.updated_at, c.resolution_due_at,
       c.public_latitude, c.public_longitude, c.dispatched_at, c.resolved_at, c.closed_at,
       c.status_changed_at, c.rework_count
FROM cases c LEFT JOIN departments d ON d.id = c.department_id
WHERE c.public AND c.created_at >= '{0}' AND c.created_at <= '{1}'
ORDER BY c.created_at DESC, c.id DESC LIMIT 100 OFFSET {2}"""


def case_rows(now: datetime, departments: list[int], categories: list[int]) -> list[tuple[Any, ...]]:
    """10,000 public cases over the last 60 days, in id order, a quarter of them closed."""
    rng = random.Random(16)
    rows = []
    for n in range(1, REQUESTS + 1):
        created = now - timedelta(days=60) * (1 - n / REQUESTS)
        lat, lon = 30.15 + rng.random() * 0.27, 119.95 + rng.random() * 0.31
        status = "CLOSED" if rng.random() < 0.25 else rng.choice(("ROUTED", "ACCEPTED", "IN_PROGRESS"))
        rows.append((
            ID_BASE + n, f"B-{n:09d}", lat, lon, lat, lon, status, 1, 2, created + timedelta(days=1),
            created + timedelta(days=5), 1, 1, "", True, created, created, created, rng.choice(categories),
            rng.choice(departments), "", "[]", 0, 0.0, "[]", created, "Bench case",
        ))  # fmt: skip
    return rows


async def prepare(url: str, now: datetime) -> str:
    """Migrate, seed the demo city, bulk-load the cases; the key of a service account."""
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        departments: list[int] = [d.id for d in await Department.all()]
        categories: list[int] = [c.id for c in await Category.all()]
        admin = await User.get(username="admin")
        issued = await service_accounts.create(
            Principal(admin, 0), "bench", [service_accounts.OPEN311_WRITE], requests_per_minute=100_000
        )
    rows = case_rows(now, departments, categories)
    await load_cases(url, rows)
    return issued.key


class RawPage:
    """The anchor: one page by one SQL statement, through the driver the server uses."""

    def __init__(self, url: str, start: datetime, end: datetime) -> None:
        self.url, self.postgres = url, url.startswith("postgres")
        # The window inline, as the server sends it (see open311.georeport._moment), spelled as SQLite
        # holds date-times.
        self.sql = RAW.format(start.isoformat(" "), end.isoformat(" "), "$1" if self.postgres else "?")
        self.conn: Any = None

    async def open(self) -> None:
        if self.postgres:
            import asyncpg

            self.conn = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        else:
            import aiosqlite

            self.conn = await aiosqlite.connect(self.url.removeprefix("sqlite://"))

    async def read(self, page: int) -> list[tuple[Any, ...]]:
        offset = (page - 1) * PAGE
        if self.postgres:
            return [tuple(r) for r in await self.conn.fetch(self.sql, offset)]
        return list(await self.conn.execute_fetchall(self.sql, (offset,)))


async def measure(url: str, quick: bool, tmp: Path) -> dict[str, Any]:
    now = datetime.now(UTC)
    key = await prepare(url, now)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp), **PRODUCTION_SERVER_ENV}
    pin = pinned()
    pin_client()
    server = subprocess.Popen(  # noqa: ASYNC220 (starting the server is outside every measurement)
        [*pin, sys.executable, "-m", "uvicorn", "server.main:app", "--port", str(port), "--workers", "1",
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    # The server's default window ends when it answers; the anchor's ends a minute later (no new rows).
    raw = RawPage(url, now - timedelta(days=90), now + timedelta(minutes=1))
    await raw.open()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            pages = iter(range(10**9))

            async def get() -> list[dict[str, Any]]:
                page = next(pages) % PAGES + 1
                response = await client.get(f"/open311/v2/requests.json?page_size={PAGE}&page={page}")
                assert response.status_code == 200, response.text
                return response.json()

            async def anchor() -> list[tuple[Any, ...]]:
                return await raw.read(next(pages) % PAGES + 1)

            first = await client.get(f"/open311/v2/requests.json?page_size={PAGE}&page=1")
            got, want = [r["service_request_id"] for r in first.json()], [r[0] for r in await raw.read(1)]
            assert got == want, (got[:3], want[:3], len(got), len(want))
            assert len(first.json()) == PAGE
            rng = random.Random(3)

            async def post() -> None:
                form = {
                    "api_key": key,
                    "service_code": "noise.construction",
                    "lat": str(30.21 + rng.random() * 0.08),
                    "long": str(120.03 + rng.random() * 0.10),
                    "attribute[measured_db]": "80",
                    "client_token": uuid.uuid4().hex,
                }
                response = await client.post("/open311/v2/requests.json", data=form)
                assert response.status_code == 201, response.text

            for _ in range(20):  # warm both paths
                await get()
                await anchor()
            seconds = 0.3 if quick else 2.0
            http_all: list[float] = []
            raw_medians = []
            get_cpu = 0.0  # the server's CPU while answering pages (the anchor's rounds left out)
            for _ in range(3 if quick else 8):
                raw_medians.append(statistics.median(await timed(anchor, seconds / 4)))
                began = process_cpu_seconds(server.pid)
                http_all += await timed(get, seconds)
                get_cpu += process_cpu_seconds(server.pid) - began
            began = process_cpu_seconds(server.pid)  # with its in-process worker delivering what they caused
            posts = await timed(post, 0.6 if quick else 8.0)
            post_cpu = process_cpu_seconds(server.pid) - began
    finally:
        await raw.conn.close()
        stop(server)
    return {
        "get_p50_ms": statistics.median(http_all),
        "get_p99_ms": percentile(http_all, 0.99),
        "get_cpu_ms": get_cpu * 1000 / len(http_all),
        "gets": len(http_all),
        "raw_ms": statistics.median(raw_medians),
        "post_p50_ms": statistics.median(posts),
        "post_p99_ms": percentile(posts, 0.99),
        "post_cpu_ms": post_cpu * 1000 / len(posts),
        "posts": len(posts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few rounds: a CI smoke run")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    if args.only:
        folder = Path(tempfile.mkdtemp(prefix="bench-open311-"))
        try:
            print(json.dumps(asyncio.run(measure(args.only, args.quick, folder))))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    print(f"Open311 over HTTP (one uvicorn worker), {REQUESTS:,} public requests; load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-open311-") as tmp:
        for name, f in each_database(__file__, ["--quick"] if args.quick else [], tmp):
            print(
                f"[{name}] GET requests.json, {PAGE} a page: p50 {f['get_p50_ms']:.2f} ms, p99 "
                f"{f['get_p99_ms']:.2f} ms, server CPU {f['get_cpu_ms']:.2f} ms a request over {f['gets']} "
                f"(target p50 <= 3 ms); the same page by one raw SQL query {f['raw_ms']:.2f} ms "
                f"({f['get_p50_ms'] / f['raw_ms']:.1f}x). POST requests.json: p50 {f['post_p50_ms']:.2f} ms, "
                f"p99 {f['post_p99_ms']:.2f} ms, server CPU {f['post_cpu_ms']:.2f} ms a request over "
                f"{f['posts']} (target p50 <= 3 ms); load after: {os.getloadavg()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
