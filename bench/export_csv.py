"""Benchmark: exporting many cases as CSV, the way the export job runs it.

    python bench/export_csv.py                  # 1,000,000 cases; SQLite, then PostgreSQL
    python bench/export_csv.py --quick          # a CI smoke run (5,000 cases)

Seeds N cases in bulk (Chinese summaries, every one visible to the admin who exports), then runs one
export job to the end (`exports.jobs.claim` and `run_job`, the runner's own steps) and prints rows per
second, the process's CPU per row (every thread: reading, building rows, writing) and its resident
memory: before the export, its peak while exporting (sampled after every batch, from /proc) and how
much it grew. Flat memory means the peak does not grow with N.
Each database is measured in its own process.
PostgreSQL (BENCH_POSTGRES_URL): the database given is wiped (default: a local `bench` database).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import connections  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import each_database, fresh_database  # noqa: E402
from exports.jobs import ExportConfig, ExportRequest, claim, run_job, start_export  # noqa: E402
from exports.models import ExportFormat, ExportKind, ExportStatus  # noqa: E402
from identity.models import User  # noqa: E402
from identity.service import Principal  # noqa: E402
from reports.lifecycle import Status  # noqa: E402
from reports.models import Case, Category, Department  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import seed_demo  # noqa: E402

CHUNK = 100_000
WEST = (30.26, 120.10)
STATUSES = (Status.ROUTED, Status.ACCEPTED, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED)


def rss_mib() -> float:
    """The resident set size of this process now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def seed(count: int) -> None:
    """`count` cases copied in SQL from one template case (a million in seconds, where the ORM's bulk
    insert takes minutes): references E1.., statuses in turn, latitudes spread a little."""
    category_id = (await Category.get(code="noise.construction")).id
    department_id = (await Department.get(code="urban-west")).id
    created = datetime.now(UTC) - timedelta(days=30)
    template = await Case.create(
        reference="E-template",
        category_id=category_id,
        latitude=WEST[0],
        longitude=WEST[1],
        public_latitude=WEST[0],
        public_longitude=WEST[1],
        status=Status.ACCEPTED,
        department_id=department_id,
        summary="夜间施工噪音扰民, 工地在小区北门",
        response_due_at=created + timedelta(days=1),
        resolution_due_at=created + timedelta(days=7),
        last_reported_at=created,
        created_at=created,
        updated_at=created,
    )
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    copied = [c for c in Case._meta.db_fields if c not in ("id", "reference", "status", "latitude")]
    statuses = " ".join(f"WHEN {i} THEN '{s.value}'" for i, s in enumerate(STATUSES))
    for first in range(1, count + 1, CHUNK):
        last = min(first + CHUNK - 1, count)
        numbers = (
            f"SELECT generate_series({first}, {last}) AS i"
            if postgres
            else f"WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s WHERE i < {last}) "
            "SELECT i FROM s"
        )
        await conn.execute_script(
            f"INSERT INTO cases (reference, status, latitude, {', '.join(copied)}) "
            f"SELECT 'E' || n.i, CASE n.i % {len(STATUSES)} {statuses} END, t.latitude + n.i * 1e-7, "
            f"{', '.join(f't.{c}' for c in copied)} FROM ({numbers}) AS n, cases t WHERE t.id = {template.id}"
        )
    await Case.filter(id=template.id).delete()
    if postgres:
        await conn.execute_script("ANALYZE cases")


def written(root: Path) -> tuple[Path, int]:
    """The export's file and its rows (the header aside), read back as a spreadsheet would."""
    (path,) = root.glob("*.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        return path, sum(1 for _ in csv.reader(f)) - 1


async def measure(url: str, count: int, root: Path, batch_rows: int) -> dict[str, float]:
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        began = time.perf_counter()
        await seed(count)
        seeded = time.perf_counter() - began
        admin = await User.get(username="admin")
        config = ExportConfig(root=root, batch_rows=batch_rows)
        request = ExportRequest("bench", ExportKind.CASES, ExportFormat.CSV, {})
        job = await start_export(Principal(admin, 0), request)
        claimed = await claim(config, job.id)
        assert claimed is not None
        before = rss_mib()
        samples: list[float] = []

        async def sample(done: int, total: int) -> None:
            samples.append(rss_mib())

        began, began_cpu = time.perf_counter(), time.process_time()
        status = await run_job(config, claimed, sample)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        assert status is ExportStatus.DONE, status
        path, rows = written(root)
        assert rows == count, (rows, count)
        tenth = max(1, len(samples) // 10)
        return {
            "seed_s": seeded,
            "run_s": elapsed,
            "rows_per_s": count / elapsed,
            "cpu_us_per_row": cpu * 1e6 / count,  # every thread of this process: reading, rows, writing
            "file_mib": path.stat().st_size / 2**20,
            "rss_before_mib": before,
            "rss_peak_mib": max(samples, default=before),
            "rss_at_10pct_mib": samples[tenth - 1] if samples else before,
            "rss_at_end_mib": samples[-1] if samples else before,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 cases: proves the benchmark works")
    parser.add_argument("--cases", type=int, help="cases to seed and export")
    parser.add_argument("--batch-rows", type=int, default=5000, help="rows per batch (the default setting)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    count = args.cases or (5000 if args.quick else 1_000_000)
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(measure(args.only, count, Path(tmp), args.batch_rows))))
        return
    print(
        f"{count:,} cases exported as CSV by one job, batches of {args.batch_rows:,}; load: {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, f in each_database(__file__, [f"--cases={count}", f"--batch-rows={args.batch_rows}"], tmp):
            print(
                f"{name:10s} seeded in {f['seed_s']:.0f} s; export {f['run_s']:.1f} s "
                f"({f['rows_per_s']:,.0f} rows/s, CPU {f['cpu_us_per_row']:.1f} us a row, "
                f"{f['file_mib']:.0f} MiB); resident memory "
                f"{f['rss_before_mib']:.0f} MiB before, {f['rss_at_10pct_mib']:.0f} at 10 %, "
                f"{f['rss_at_end_mib']:.0f} at the end, peak {f['rss_peak_mib']:.0f}; load: {os.getloadavg()}"
            )


if __name__ == "__main__":
    main()
