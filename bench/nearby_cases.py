"""Benchmark: `nearbyCases` (a resident's "is this already reported?") at two sizes of history, in one
process, interleaved.

    python bench/nearby_cases.py            # 10,000 against 1,000,000 cases; SQLite, then PostgreSQL
    python bench/nearby_cases.py --quick    # CI smoke run: 1,000 against 20,000 cases

Two databases per engine, each the demo city with N cases spread over it and two years (a quarter
open, the rest closed, every one public); SQLite as two files, PostgreSQL as the database given
(BENCH_POSTGRES_URL, wiped) and the same name with `_large` (created if missing, wiped). One task per
database holds its own Tortoise context; they take turns, round by round, asking
`reports.service.nearby_cases` (the query and the distance sort the GraphQL field runs) at the same
random points and categories, so both sizes see the same machine. Reported: p50 and p99 per size,
the ratio of the large size's p50 to the small one's (target: flat, at most 1.2, issue 18), and CPU
per call of this process (on SQLite that includes the database's work, which runs in aiosqlite's
thread; PostgreSQL's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import each_database, fresh_database  # noqa: E402
from bench.support.seeding import load_cases  # noqa: E402
from bench.support.timing import percentile  # noqa: E402
from reports.models import Category, Department  # noqa: E402
from reports.service import Location, nearby_cases  # noqa: E402
from reports.store import build_snapshot  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import seed_demo  # noqa: E402

ID_BASE = 10_000_000
SOUTH, WEST, SPAN_LAT, SPAN_LON = 30.15, 119.95, 0.27, 0.31  # the demo city's box
TARGET_RATIO = 1.2


def case_rows(count: int, departments: list[int], categories: list[int]) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(18)
    now = datetime.now(UTC)
    for n in range(1, count + 1):
        created = now - timedelta(days=730) * (1 - n / count)
        lat, lon = SOUTH + rng.random() * SPAN_LAT, WEST + rng.random() * SPAN_LON
        status = rng.choice(("ROUTED", "ACCEPTED", "IN_PROGRESS")) if rng.random() < 0.25 else "CLOSED"
        yield (
            ID_BASE + n, f"N-{n:09d}", lat, lon, lat, lon, status, 1, 2, created + timedelta(days=1),
            created + timedelta(days=5), 1, 1, "", True, created, created, created, rng.choice(categories),
            rng.choice(departments), "", "[]", 0, 0.0, "[]", created, "Bench case",
        )  # fmt: skip


async def prepare(url: str, count: int) -> None:
    """A fresh database: the demo city, then `count` cases loaded in bulk, then the planner's statistics."""
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        departments: list[int] = [d.id for d in await Department.all()]
        categories: list[int] = [c.id for c in await Category.all()]
    rows = case_rows(count, departments, categories)
    await load_cases(url, rows)


def larger(url: str) -> str:
    """The second database of the same engine: another file, or the same name with `_large`."""
    if url.startswith("postgres"):
        return f"{url}_large"
    return url.removesuffix(".sqlite3") + "-large.sqlite3"


Ask = tuple[str, Location]


async def serve(url: str, asks: asyncio.Queue[list[Ask] | None], answers: asyncio.Queue[list[float]]) -> None:
    """One database's turn-taker: for each batch of questions, the milliseconds each took."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        snapshot = await build_snapshot(None)
        while (batch := await asks.get()) is not None:
            times = []
            for code, location in batch:
                began = time.perf_counter()
                await nearby_cases(snapshot, code, location)
                times.append((time.perf_counter() - began) * 1000)
            await answers.put(times)


async def measure(url: str, small: int, large: int, rounds: int, per_round: int) -> dict[str, Any]:
    sizes = {small: url, large: larger(url)}
    for count, database in sizes.items():
        await prepare(database, count)
    async with TortoiseContext() as ctx:  # the category codes the demo city offers
        await ctx.init(config=tortoise_config(url))
        codes = [c.code for c in (await build_snapshot(None)).catalog]
    queues = {count: (asyncio.Queue[list[Ask] | None](), asyncio.Queue[list[float]]()) for count in sizes}
    tasks = [asyncio.create_task(serve(sizes[c], *queues[c])) for c in sizes]
    rng = random.Random(7)
    times: dict[int, list[float]] = {count: [] for count in sizes}
    cpu: dict[int, float] = dict.fromkeys(sizes, 0.0)
    for number in range(rounds + 1):  # the first round warms both up and is not counted
        batch = [
            (rng.choice(codes), Location(SOUTH + rng.random() * SPAN_LAT, WEST + rng.random() * SPAN_LON))
            for _ in range(per_round)
        ]
        order = list(sizes) if number % 2 else list(sizes)[::-1]  # alternate who goes first
        for count in order:
            asks, answers = queues[count]
            began = time.process_time()
            await asks.put(batch)
            got = await answers.get()
            if number:
                cpu[count] += time.process_time() - began
                times[count].extend(got)
    for asks, _ in queues.values():
        await asks.put(None)
    await asyncio.gather(*tasks)
    figures: dict[str, Any] = {}
    for count, got in times.items():
        figures[f"{count}_p50_ms"] = statistics.median(got)
        figures[f"{count}_p99_ms"] = percentile(got, 0.99)
        figures[f"{count}_cpu_ms"] = cpu[count] * 1000 / len(got)
    figures["ratio"] = figures[f"{large}_p50_ms"] / figures[f"{small}_p50_ms"]
    figures["calls_per_size"] = len(times[small])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 against 20,000 cases, a few rounds")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one engine per process
    args = parser.parse_args()
    small, large, rounds, per_round = (1_000, 20_000, 3, 20) if args.quick else (10_000, 1_000_000, 20, 100)
    if args.only:
        print(json.dumps(asyncio.run(measure(args.only, small, large, rounds, per_round))))
        return
    print(f"nearbyCases at {small:,} and {large:,} cases, interleaved in one process; target ratio <= 1.2")
    with tempfile.TemporaryDirectory() as tmp:
        for name, f in each_database(__file__, ["--quick"] if args.quick else [], tmp):
            sizes = " | ".join(
                f"{n:>9,}: p50 {f[f'{n}_p50_ms']:.3f} ms, p99 {f[f'{n}_p99_ms']:.3f} ms, "
                f"CPU {f[f'{n}_cpu_ms']:.3f} ms"
                for n in (small, large)
            )
            print(f"{name:10s} {sizes} | ratio {f['ratio']:.2f} over {f['calls_per_size']} calls each")


if __name__ == "__main__":
    main()
