"""Benchmark: the escalation pass over many overdue cases, alone and as two processes at once.

    python bench/escalation.py             # 10,000 and 100,000 cases; SQLite, then PostgreSQL
    python bench/escalation.py --quick     # a CI smoke run (1,000 cases)
    python bench/escalation.py --cases 50000

Each database is measured in its own process (Tortoise keeps per-process state from its first engine).
Per size: one pass in process (`reports.deadlines.escalate_due_cases`), cases escalated per second;
then as many new overdue cases and two `python -m server escalate` processes started together:
wall time, and the check that exactly one escalation event was written per case.
PostgreSQL (BENCH_POSTGRES_URL): the database given is wiped (default: a local `bench` database,
created if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
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
from reports.deadlines import ESCALATED, escalate_due_cases  # noqa: E402
from reports.models import CaseEvent  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import seed_demo  # noqa: E402
from tests.reports.helpers import working_cases  # noqa: E402


async def refresh_statistics() -> None:
    """After a bulk load, the planner's statistics as autovacuum would soon have them."""
    await connections.get("default").execute_script("ANALYZE cases")


def two_processes(url: str, data_dir: Path) -> tuple[float, list[str]]:
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    began = time.perf_counter()
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "server", "escalate"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [job.communicate()[0].strip() for job in jobs]
    elapsed = time.perf_counter() - began
    if any(job.returncode for job in jobs):
        raise SystemExit(f"an escalate process failed: {outputs}")
    return elapsed, outputs


async def measure(url: str, counts: list[int], data_dir: Path) -> dict[str, float | str]:
    await fresh_database(url)
    figures: dict[str, float | str] = {}
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        for count in counts:
            ids = await working_cases(count, datetime.now(UTC) - timedelta(hours=1))
            await refresh_statistics()
            began = time.perf_counter()
            result = await escalate_due_cases(datetime.now(UTC))
            elapsed = time.perf_counter() - began
            assert result.escalated == count, result
            figures[f"{count}_pass_s"] = elapsed
            figures[f"{count}_cases_per_s"] = count / elapsed

            # As many new overdue cases (the log is append-only; escalated ones are no longer candidates).
            ids = await working_cases(count, datetime.now(UTC) - timedelta(hours=1))
            await refresh_statistics()
            wall, outputs = two_processes(url, data_dir)
            # The new cases' ids are one range (bulk-created together).
            new_cases = {"case_id__gte": ids[0], "case_id__lte": ids[-1], "kind": ESCALATED}
            written = await CaseEvent.filter(**new_cases).values_list("case_id", flat=True)
            assert len(written) == len(set(written)) == count, (len(written), len(set(written)), count)
            figures[f"{count}_two_processes_s"] = wall
            figures[f"{count}_events_per_case"] = len(written) / count
            figures[f"{count}_split"] = " / ".join(out.split(" escalated")[0].split()[-1] for out in outputs)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 cases only: proves the benchmark works")
    parser.add_argument("--cases", type=int, action="append", help="a size to measure (repeatable)")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    counts = args.cases or ([1000] if args.quick else [10_000, 100_000])
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(measure(args.only, counts, Path(tmp)))))
        return
    print(f"overdue cases: {', '.join(f'{c:,}' for c in counts)}; one pass, then two processes at once")
    with tempfile.TemporaryDirectory() as tmp:
        for name, figures in each_database(__file__, [f"--cases={c}" for c in counts], tmp):
            for count in counts:
                print(
                    f"{name:10s} {count:>7,} cases: one pass {figures[f'{count}_pass_s']:.2f} s "
                    f"({figures[f'{count}_cases_per_s']:,.0f} cases/s); two processes "
                    f"{figures[f'{count}_two_processes_s']:.2f} s wall, split {figures[f'{count}_split']}, "
                    f"{figures[f'{count}_events_per_case']:.0f} event per case"
                )


if __name__ == "__main__":
    main()
