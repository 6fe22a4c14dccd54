"""Benchmark: a department queue's first page over HTTP against the same page read with one raw query.

    python bench/queue_page.py                  # 10k, 100k and 1M cases; SQLite, then PostgreSQL
    python bench/queue_page.py --quick          # CI smoke run: 10k cases, a few rounds (under a minute)
    python bench/queue_page.py --db sqlite --sizes 10000,100000

The page: the 50 newest open cases of the busiest department (15 % of all cases), each with its
category, department, reporter count, first photo thumbnail URL and due time, as `departmentQueue`
serves them from a real uvicorn (one worker, pinned to CPU 1 where `taskset` exists; the benchmark
runs on CPU 0). The anchor (a) is the same page read by this script with one hand-written SQL query
through aiosqlite / asyncpg. Before any timing, both must return the same rows.

Method (as the performance baseline prescribes): rounds of (a) then HTTP at one request at a time,
interleaved; p50 and p99 over every HTTP request; the ratio is the median of per-round ratios of the
medians. Throughput: 16 requests in flight for a few seconds. Each database and size runs in its own
process (Tortoise keeps per-process state); PostgreSQL's database is wiped (BENCH_POSTGRES_URL, default
a local `bench` database, created if missing).

Targets (issue 5): ratio <= 10x on SQLite and <= 8x on PostgreSQL; p50 <= 15 ms; >= 65 req/s at 16 in
flight; at 1M cases within 1.2x of the p50 at 10k.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.postgres import postgres_url, reset_postgres  # noqa: E402
from bench.support.runner import (  # noqa: E402
    PRODUCTION_SERVER_ENV,
    free_port,
    pin_client,
    pinned,
    process_cpu_seconds,
    stop,
)
from bench.support.seeding import CASE_COLUMNS  # noqa: E402
from bench.support.timing import percentile, timed  # noqa: E402
from media.intake import derivative_key  # noqa: E402
from reports.models import Category, Department  # noqa: E402
from server.db import apply_migrations, tortoise_config  # noqa: E402
from server.seed import load_demo_city, seed_demo  # noqa: E402

PG_URL = postgres_url()
BUSY = "urban-west"
STAFF = "urban.west"
OPEN = ("ROUTED", "ACCEPTED", "IN_PROGRESS", "REOPENED")
PAGE = 50
T0 = datetime(2024, 6, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
REPORTERS = 5_000
ID_BASE = 10_000_000  # bench rows come after whatever the demo city seeded

SIGN_IN = "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }"
# What a queue list shows per row; `nodes` rather than `edges` (the next page's cursor is in pageInfo).
QUERY = """query($d: ID!, $order: CaseQueueOrder!) {
  departmentQueue(departmentId: $d, orderBy: $order, first: 50) {
    nodes { id reference status priority reporterCount thumbnailUrl dueAt overdue
      category { code nameZh nameEn } department { code name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
# The page by one query: cut the 50 ids in index order first, then join what the page shows for those
# rows only (SQLite would otherwise run the photo lookup for every open case it sorts). The 50 ids come
# from one of two shapes (PAGE_IDS), whichever the engine runs faster at this size (RawPage.choose).
RAW = """
SELECT c.id, c.reference, c.status, c.reporter_count,
       CASE WHEN c.status = 'ROUTED' THEN c.response_due_at ELSE c.resolution_due_at END,
       cat.code, cat.name_zh, cat.name_en, d.code, d.name,
       (SELECT p.sha256 FROM reports r JOIN photos p ON p.id = {first_photo}
        WHERE r.case_id = c.id ORDER BY r.id LIMIT 1)
FROM ({page_ids}) AS page
JOIN cases c ON c.id = page.id
JOIN categories cat ON cat.id = c.category_id
LEFT JOIN departments d ON d.id = c.department_id
ORDER BY c.id DESC"""


_ONE_STATUS = (
    "SELECT * FROM (SELECT id FROM cases WHERE department_id = {{mark}} AND status = '{}' "
    "ORDER BY id DESC LIMIT 50) AS s{}"
)
PAGE_IDS = {
    # One index range over the open statuses: PostgreSQL's planner walks the primary key backward for
    # it at 100k and 1M cases (issue 18: an anchor must be the best query for the same rows).
    "one range": "SELECT id FROM cases WHERE department_id = {mark} AND status IN "
    "('ROUTED', 'ACCEPTED', 'IN_PROGRESS', 'REOPENED') ORDER BY id DESC LIMIT 50",
    # 50 newest per status, merged: the shape the API's own statement has (reports.queue.queue_page).
    "per status, merged": "SELECT id FROM ("
    + " UNION ALL ".join(_ONE_STATUS.format(status, n) for n, status in enumerate(OPEN))
    + ") AS m ORDER BY id DESC LIMIT 50",
}


# --- seeding -------------------------------------------------------------------------------------


def rows(
    count: int, department_ids: list[int], busy: int, category_ids: list[int], first_user: int
) -> Iterator[Any]:
    """(case, report, photos) per case: 25 % open, 1-3 photos, created over two years in id order."""
    rng = random.Random(5)
    others = [d for d in department_ids if d != busy]
    photo_id = ID_BASE
    for n in range(1, count + 1):
        i = ID_BASE + n
        created = T0 + SPAN * (n / count)
        department = busy if rng.random() < 0.15 else rng.choice(others)
        status = rng.choice(OPEN) if rng.random() < 0.25 else rng.choice(("CLOSED", "CLOSED", "RESOLVED"))
        lat, lon = 30.15 + rng.random() * 0.27, 119.95 + rng.random() * 0.31
        category = rng.choice(category_ids)
        photos = []
        for _ in range(rng.randint(1, 3)):
            photo_id += 1
            photos.append((photo_id, f"{rng.getrandbits(256):064x}", created))
        reporter = first_user + rng.randrange(REPORTERS)
        case = (
            i, f"B-{n:09d}", lat, lon, lat, lon, status, 1, rng.randint(1, 4), created + timedelta(days=1),
            created + timedelta(days=5), rng.randint(1, 3), 1, "", True, created, created, created, category,
            department, "", "[]", 0, 0.0, "[]", created, "Bench case",
        )  # fmt: skip
        report = (
            i, f"bench-{i}", f"fp-{i}", "Bench case", lat, lon, lat, lon, "WGS84", created, "{}",
            json.dumps([p[0] for p in photos]), False, False, created, i, category, reporter, "{}",
            "RESIDENT",
        )  # fmt: skip
        yield (
            case,
            report,
            [(pid, sha, "READY", "jpeg", 1000, 40, 30, True, at, reporter) for pid, sha, at in photos],
        )


REPORT_COLUMNS = [
    "id",
    "client_id",
    "fingerprint",
    "description",
    "latitude",
    "longitude",
    "original_latitude",
    "original_longitude",
    "crs",
    "observed_at",
    "evidence",
    "photo_ids",
    "anonymous",
    "contact_consent",
    "created_at",
    "case_id",
    "category_id",
    "reporter_id",
    "origin",
    "source",
]
PHOTO_COLUMNS = [
    "id",
    "sha256",
    "status",
    "format",
    "byte_size",
    "width",
    "height",
    "public",
    "created_at",
    "owner_id",
]
USER_COLUMNS = ["id", "role", "display_name", "is_active", "created_at"]


def batches(count: int, *fixed: Any) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    cases, reports, photos = [], [], []
    for case, report, its_photos in rows(count, *fixed):
        cases.append(case)
        reports.append(report)
        photos += its_photos
        if len(cases) == 50_000:
            yield cases, reports, photos
            cases, reports, photos = [], [], []
    if cases:
        yield cases, reports, photos


def user_rows(first_user: int) -> list[tuple[Any, ...]]:
    return [(first_user + i, "CITIZEN", f"Resident {i}", True, T0) for i in range(REPORTERS)]


def seed_sqlite(path: str, count: int, *fixed: Any) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")

    def insert(table: str, columns: list[str], values: list[Any]) -> None:
        marks = ", ".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", [
            tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in row) for row in values
        ])  # fmt: skip

    with db:
        insert("users", USER_COLUMNS, user_rows(fixed[-1]))
        for cases, reports, photos in batches(count, *fixed):
            insert("photos", PHOTO_COLUMNS, photos)
            insert("cases", CASE_COLUMNS, cases)
            insert("reports", REPORT_COLUMNS, reports)
    db.execute("ANALYZE")
    db.close()


async def seed_postgres(url: str, count: int, *fixed: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.copy_records_to_table("users", records=user_rows(fixed[-1]), columns=USER_COLUMNS)
        for cases, reports, photos in batches(count, *fixed):
            await conn.copy_records_to_table("photos", records=photos, columns=PHOTO_COLUMNS)
            await conn.copy_records_to_table("cases", records=cases, columns=CASE_COLUMNS)
            await conn.copy_records_to_table("reports", records=reports, columns=REPORT_COLUMNS)
        for table in ("users", "photos", "cases", "reports"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await conn.execute("VACUUM ANALYZE")
        # Flush the bulk load now, so the server's background writes do not fall into the timings.
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def prepare(url: str, count: int) -> int:
    """Migrate, seed the demo city, then bulk-load `count` cases; the busy department's id."""
    if url.startswith("postgres"):
        await reset_postgres(url)
    await apply_migrations(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        departments = await Department.all().values_list("id", flat=True)
        busy = (await Department.get(code=BUSY)).id
        categories = (await Category.all().order_by("id").values_list("id", flat=True))[:10]
    fixed = (list(departments), busy, list(categories), 100_000)
    if url.startswith("postgres"):
        await seed_postgres(url, count, *fixed)
    else:
        seed_sqlite(url.removeprefix("sqlite://"), count, *fixed)
    return busy


# --- measuring -----------------------------------------------------------------------------------


class RawPage:
    """The anchor: the page by one SQL statement through the same driver the server uses."""

    def __init__(self, url: str, department: int) -> None:
        self.url, self.department = url, department
        self.postgres = url.startswith("postgres")
        first_photo = "(r.photo_ids->>0)::int" if self.postgres else "json_extract(r.photo_ids, '$[0]')"
        mark = "$1" if self.postgres else ":department"  # named: the merged shape uses it four times
        self.shapes = {
            name: RAW.format(first_photo=first_photo, page_ids=ids.format(mark=mark))
            for name, ids in PAGE_IDS.items()
        }
        self.shape = next(iter(self.shapes))
        self.conn: Any = None

    @property
    def sql(self) -> str:
        return self.shapes[self.shape]

    async def choose(self, seconds: float) -> str:
        """Keep the faster shape (both must return the same rows); its name."""
        medians = {}
        first: list[tuple[Any, ...]] | None = None
        for name in self.shapes:
            self.shape = name
            got = await self.read()
            assert first is None or got == first, f"the raw shapes disagree ({name})"
            first = got
            medians[name] = statistics.median(await timed(self.read, seconds))
        self.shape = min(medians, key=lambda name: medians[name])
        return self.shape

    async def open(self) -> None:
        if self.postgres:
            import asyncpg

            self.conn = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
        else:
            import aiosqlite

            self.conn = await aiosqlite.connect(self.url.removeprefix("sqlite://"))

    async def close(self) -> None:
        await self.conn.close()

    async def read(self) -> list[tuple[Any, ...]]:
        if self.postgres:
            return [tuple(r) for r in await self.conn.fetch(self.sql, self.department)]
        return list(await self.conn.execute_fetchall(self.sql, {"department": self.department}))


async def measure(url: str, count: int, quick: bool, tmp: Path) -> dict[str, Any]:
    busy = await prepare(url, count)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp),
        **PRODUCTION_SERVER_ENV,
        "LOG_LEVEL": "warning",
    }
    pin = pinned()
    pin_client()
    server = subprocess.Popen(  # noqa: ASYNC220 (starting the server is outside every measurement)
        [*pin, sys.executable, "-m", "uvicorn", "server.main:app", "--port", str(port), "--workers", "1",
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    raw = RawPage(url, busy)
    await raw.open()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            login = {"login": STAFF, "password": load_demo_city()["password"]}
            response = await client.post("/graphql", json={"query": SIGN_IN, "variables": {"i": login}})
            headers = {"Authorization": f"Bearer {response.json()['data']['signIn']['accessToken']}"}
            from strawberry.relay import to_base64

            department = to_base64("Department", busy)

            async def api(order: str = "CREATED") -> dict[str, Any]:
                response = await client.post(
                    "/graphql",
                    json={"query": QUERY, "variables": {"d": department, "order": order}},
                    headers=headers,
                )
                body = response.json()
                assert "errors" not in body, body
                return body["data"]["departmentQueue"]

            figures: dict[str, Any] = {"raw_shape": await raw.choose(0.2 if quick else 1)}
            check_same_rows(await api(), await raw.read())
            figures.update(await rounds(api, raw, quick, server.pid))
            figures["due_order_p50_ms"] = statistics.median(
                await timed(lambda: api("DUE"), 0.5 if quick else 2)
            )
            figures["req_per_s_16"] = await throughput(api, 1.5 if quick else 5)
    finally:
        await raw.close()
        stop(server)
    return {"cases": count, **figures}


def check_same_rows(page: dict[str, Any], raw: list[tuple[Any, ...]]) -> None:
    """The API and the raw query must agree on every row before anything is timed."""
    from strawberry.relay import from_base64

    nodes = page["nodes"]
    assert len(nodes) == len(raw) == PAGE, (len(nodes), len(raw))
    for node, row in zip(nodes, raw, strict=True):
        case_id, reference, status, reporters, due, code, name_zh, _, dept_code, dept_name, sha = row
        assert int(from_base64(node["id"])[1]) == case_id and node["reference"] == reference
        assert node["status"] == status and node["reporterCount"] == reporters
        assert node["category"]["code"] == code and node["category"]["nameZh"] == name_zh
        assert node["department"] == {"code": dept_code, "name": dept_name}
        assert node["thumbnailUrl"].endswith("/media/" + derivative_key(sha, "thumb")), node["thumbnailUrl"]
        due = datetime.fromisoformat(due) if isinstance(due, str) else due
        assert datetime.fromisoformat(node["dueAt"]) == due, (node["dueAt"], due)


async def rounds(
    api: Callable[[], Awaitable[Any]], raw: RawPage, quick: bool, server_pid: int
) -> dict[str, float]:
    for _ in range(5):  # warm both paths
        await api()
        await raw.read()
    count, seconds = (3, 0.4) if quick else (8, 1.0)
    http_all: list[float] = []
    raw_medians, ratios = [], []
    server_cpu = 0.0
    for _ in range(count):
        raw_times = await timed(raw.read, seconds / 4)
        cpu_before = process_cpu_seconds(server_pid)
        http_times = await timed(api, seconds)
        server_cpu += process_cpu_seconds(server_pid) - cpu_before
        http_all += http_times
        raw_medians.append(statistics.median(raw_times))
        ratios.append(statistics.median(http_times) / raw_medians[-1])
    return {
        "raw_ms": statistics.median(raw_medians),
        "http_p50_ms": statistics.median(http_all),
        "http_p99_ms": percentile(http_all, 0.99),
        "ratio": statistics.median(ratios),
        # CPU of the server process (every thread) per page, over every timed HTTP request.
        "server_cpu_ms": server_cpu / len(http_all) * 1000,
    }


async def throughput(api: Callable[[], Awaitable[Any]], seconds: float, in_flight: int = 16) -> float:
    done = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await api()
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done / (time.perf_counter() - began)


def run_one(db: str, count: int, quick: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    try:
        url = f"sqlite://{tmp / 'bench.sqlite3'}" if db == "sqlite" else PG_URL
        return asyncio.run(measure(url, count, quick, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TARGET_RATIO = {"sqlite": 10.0, "postgres": 8.0}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 cases, a few rounds: a CI smoke run")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", help="comma-separated case counts (default 10000,100000,1000000)")
    parser.add_argument("--only", type=int, help=argparse.SUPPRESS)  # one database and size per process
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.db, args.only, args.quick)))
        return
    sizes = [10_000] if args.quick else [int(s) for s in (args.sizes or "10000,100000,1000000").split(",")]
    print(
        f"queue page of {PAGE} over HTTP (one uvicorn worker) vs one raw SQL query; load: {os.getloadavg()}"
    )
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        by_size = {}
        for size in sizes:
            command = [
                sys.executable,
                __file__,
                "--db",
                db,
                "--only",
                str(size),
                *(["--quick"] if args.quick else []),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"{db} at {size} cases failed")
            f = json.loads(done.stdout.strip().splitlines()[-1])
            by_size[size] = f
            print(
                f"[{db}] {size:>9,} cases: raw {f['raw_ms']:.2f} ms ({f['raw_shape']}); HTTP p50 "
                f"{f['http_p50_ms']:.2f} ms p99 {f['http_p99_ms']:.2f} ms; ratio {f['ratio']:.1f}x "
                f"(target <= {TARGET_RATIO[db]:.0f}x); server CPU {f['server_cpu_ms']:.2f} ms/page; "
                f"{f['req_per_s_16']:.0f} req/s at 16 in flight (target >= 65); DUE order p50 "
                f"{f['due_order_p50_ms']:.2f} ms; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if len(by_size) > 1:
            small, large = by_size[min(by_size)], by_size[max(by_size)]
            print(
                f"[{db}] p50 at {max(by_size):,} / at {min(by_size):,}: "
                f"{large['http_p50_ms'] / small['http_p50_ms']:.2f}x (target <= 1.2x)"
            )


if __name__ == "__main__":
    main()
