"""Benchmark: the retention job over many expired reports and their closed cases.

    python bench/retention.py                    # 200,000 reports; SQLite, then PostgreSQL
    python bench/retention.py --reports 1000000  # the issue's figure
    python bench/retention.py --quick            # a CI smoke run (3,000 reports)

Seeds N closed cases, each with one report, closed long before the retention period, in bulk; then one
`server.retention.run_retention` pass (batches of the shipped policy's size). Prints the total time, rows
per second and the longest single batch transaction: the longest any row lock is held, on `cases` among
others (the issue's bound is 100 ms). Each database is measured in its own process.
PostgreSQL (BENCH_POSTGRES_URL): the database given is wiped (default: a local `bench` database).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
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
from identity.models import Role, User  # noqa: E402
from kernel.retention import load_policy  # noqa: E402
from media.storage import LocalStorage  # noqa: E402
from reports.lifecycle import Status  # noqa: E402
from reports.models import Case, Category, Department, Report  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.retention import run_retention  # noqa: E402
from server.seed import seed_demo  # noqa: E402

CHUNK = 10_000
WEST = (31.2304, 121.4737)


async def seed(count: int) -> None:
    """`count` cases closed four years ago, one report each, written in bulk chunks."""
    category_id = (await Category.get(code="noise.industrial")).id
    department_id = (await Department.get(code="eco")).id
    reporter = await User.create(role=Role.CITIZEN, display_name="bench")
    closed = datetime.now(UTC) - timedelta(days=4 * 365)
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        tag = f"R{start:08d}"
        await Case.bulk_create(
            [
                Case(
                    reference=f"{tag}{i:06d}",
                    category_id=category_id,
                    latitude=WEST[0] + i * 1e-6,
                    longitude=WEST[1],
                    public_latitude=WEST[0],
                    public_longitude=WEST[1],
                    status=Status.CLOSED,
                    version=6,
                    department_id=department_id,
                    summary="Factory behind my flat",
                    resolution_note="Silencer fitted",
                    closed_at=closed,
                    status_changed_at=closed,
                    last_reported_at=closed,
                    created_at=closed,
                    updated_at=closed,
                )
                for i in range(size)
            ],
            batch_size=1000,
        )
        ids = await Case.filter(reference__startswith=tag).order_by("id").values_list("id", flat=True)
        await Report.bulk_create(
            [
                Report(
                    reporter_id=reporter.id,
                    client_id=f"{tag}-{i}",
                    fingerprint="f" * 64,
                    category_id=category_id,
                    case_id=case_id,
                    description="Factory behind my flat, call me on 13900000000",
                    latitude=WEST[0],
                    longitude=WEST[1],
                    original_latitude=WEST[0],
                    original_longitude=WEST[1],
                    crs="WGS84",
                    accuracy_m=8.0,
                    observed_at=closed,
                    contact_consent=True,
                    created_at=closed,
                )
                for i, case_id in enumerate(ids)
            ],
            batch_size=1000,
        )
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script("ANALYZE cases; ANALYZE reports")


def spread(seconds: list[float], name: str) -> dict[str, float]:
    """Median and 99th percentile of a kind's batch transactions, and how many took over 100 ms."""
    ordered = sorted(seconds) or [0.0]
    return {
        f"{name}_p50_ms": ordered[len(ordered) // 2] * 1000,
        f"{name}_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        f"{name}_over_100ms": float(sum(s > 0.1 for s in ordered)),
    }


async def measure(url: str, count: int, media: Path, batch_size: int | None) -> dict[str, float]:
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        began = time.perf_counter()
        await seed(count)
        seeded = time.perf_counter() - began
        policy = load_policy()
        if batch_size:
            policy = dataclasses.replace(policy, batch_size=batch_size)
        began = time.perf_counter()
        tally = await run_retention(policy, LocalStorage(media))
        elapsed = time.perf_counter() - began
        reports, cases = tally.rows.get("report_personal", 0), tally.rows.get("closed_case_personal", 0)
        assert reports == count and cases == count, tally
        assert not await Report.filter(anonymized_at=None).exists()
        return {
            "seed_s": seeded,
            "run_s": elapsed,
            "rows_per_s": (reports + cases) / elapsed,
            "batches": tally.batches,
            "batch_size": policy.batch_size,
            "longest_tx_ms": tally.longest_transaction_s * 1000,
            # The batches that write `cases` (the reports' batches only read it).
            "longest_cases_tx_ms": tally.longest_by_kind.get("closed_case_personal", 0.0) * 1000,
            "longest_reports_tx_ms": tally.longest_by_kind.get("report_personal", 0.0) * 1000,
            **spread(tally.durations.get("closed_case_personal", []), "cases"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3,000 reports: proves the benchmark works")
    parser.add_argument("--reports", type=int, help="expired reports (and closed cases) to seed")
    parser.add_argument("--batch-size", type=int, help="rows per batch (default: the shipped policy's)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    count = args.reports or (3000 if args.quick else 200_000)
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(measure(args.only, count, Path(tmp), args.batch_size))))
        return
    extra = [f"--batch-size={args.batch_size}"] if args.batch_size else []
    print(f"{count:,} expired reports, each in its own closed case; one retention run")
    with tempfile.TemporaryDirectory() as tmp:
        for name, f in each_database(__file__, [f"--reports={count}", *extra], tmp):
            print(
                f"{name:10s} seeded in {f['seed_s']:.0f} s; run {f['run_s']:.1f} s "
                f"({f['rows_per_s']:,.0f} rows/s: reports + cases), {f['batches']:.0f} batches of "
                f"{f['batch_size']:.0f}; longest transaction writing cases "
                f"{f['longest_cases_tx_ms']:.1f} ms (median {f['cases_p50_ms']:.1f}, "
                f"p99 {f['cases_p99_ms']:.1f}, {f['cases_over_100ms']:.0f} over 100 ms), "
                f"writing reports {f['longest_reports_tx_ms']:.1f} ms"
            )


if __name__ == "__main__":
    main()
