"""Benchmark: a signboard read (`GET /patrol-areas/{code}/signboard.json`) from a warm cache.

    python bench/signboard.py            # 2,000 areas; SQLite, then PostgreSQL (BENCH_POSTGRES_URL)
    python bench/signboard.py --quick    # CI smoke run: 100 areas, short rounds

The app is the real one (production settings) served in process over httpx's ASGI transport, one
request at a time, each to a random area (two chiefs each, at county and village level). Figures:
- warm: every signboard already cached (the first round builds them all): p50/p99 wall and CPU per
  request;
- anchor: the same transport to a bare Starlette route answering the same bytes, measured in the same
  run, so `warm / anchor` says what the signboard adds above the HTTP stack itself;
- cold: the cache forgotten before each request (one query for the area, one for its assignments).

Target (issue 17): warm p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import bench_settings, each_database, fresh_database  # noqa: E402
from bench.support.timing import percentile  # noqa: E402
from identity.models import Role, User  # noqa: E402
from patrols import signboard  # noqa: E402
from patrols.models import AreaKind, ChiefAssignment, ChiefKind, ChiefLevel, PatrolArea  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import tortoise_config  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周"


async def seed(areas: int) -> list[str]:
    await User.bulk_create(
        [
            User(username=f"b.chief.{i}", role=Role.CHIEF, display_name=f"河长 {SURNAMES[i % 10]}明")
            for i in range(20)
        ]
    )
    chiefs = await User.filter(username__startswith="b.chief.").order_by("id")
    line = {"type": "LineString", "coordinates": [[113.6, 34.7], [113.61, 34.71]]}
    await PatrolArea.bulk_create(
        [
            PatrolArea(
                code=f"B-{i:05d}",
                name=f"河段 {i}",
                kind=AreaKind.RIVER_SEGMENT,
                admin_region="999901",
                geometry=line,
            )  # fmt: skip
            for i in range(areas)
        ]
    )
    rows = await PatrolArea.filter(code__startswith="B-").values_list("id", flat=True)
    await ChiefAssignment.bulk_create(
        [
            ChiefAssignment(
                chief_id=chiefs[(n + k) % len(chiefs)].id,
                area_id=area_id,
                level=level,
                kind=ChiefKind.RIVER,
                valid_from=date(2026, 1, 1),
            )  # fmt: skip
            for n, area_id in enumerate(rows)
            for k, level in enumerate((ChiefLevel.COUNTY, ChiefLevel.VILLAGE))
        ]
    )
    return [f"B-{i:05d}" for i in range(areas)]


async def timed_calls(
    call: Callable[[str], Awaitable[Any]], codes: list[str], seconds: float, rng: random.Random
) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per call, one at a time, for about `seconds`."""
    wall: list[float] = []
    cpu: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(wall) < 3:
        code = rng.choice(codes)
        began, began_cpu = time.perf_counter(), time.process_time()
        await call(code)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return wall, cpu


async def measure(url: str, areas: int, seconds: float) -> dict[str, float]:
    await fresh_database(url)
    with tempfile.TemporaryDirectory() as media:
        app = create_app(bench_settings(url, Path(media)), init_db=False)
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(url))
            codes = await seed(areas)
            rng = random.Random(17)
            body = b""
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as http:

                async def read(code: str) -> None:
                    nonlocal body
                    answer = await http.get(f"/patrol-areas/{code}/signboard.json")
                    assert answer.status_code == 200, answer.text
                    body = answer.content

                for code in codes:  # warm every signboard
                    await read(code)
                warm_wall, warm_cpu = await timed_calls(read, codes, seconds, rng)

                async def cold(code: str) -> None:
                    signboard.forget()
                    await read(code)

                cold_wall, _ = await timed_calls(cold, codes, seconds / 2, rng)

            async def fixed(request: Request) -> Response:
                return Response(body, media_type="application/json", headers={"etag": '"x"'})

            bare = Starlette(routes=[Route("/patrol-areas/{code}/signboard.json", fixed)])
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=bare), base_url="http://bench"
            ) as http:

                async def anchor(code: str) -> None:
                    await http.get(f"/patrol-areas/{code}/signboard.json")

                anchor_wall, anchor_cpu = await timed_calls(anchor, codes, seconds, rng)
        await app.state.access_writer.close()
    return {
        "warm_p50_ms": percentile(warm_wall, 0.5),
        "warm_p99_ms": percentile(warm_wall, 0.99),
        "warm_cpu_p50_ms": percentile(warm_cpu, 0.5),
        "anchor_p50_ms": percentile(anchor_wall, 0.5),
        "anchor_cpu_p50_ms": percentile(anchor_cpu, 0.5),
        "cold_p50_ms": percentile(cold_wall, 0.5),
        "requests": len(warm_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 areas, short rounds: proves it works")
    parser.add_argument("--areas", type=int)
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    areas = args.areas or (100 if args.quick else 2_000)
    seconds = 1.0 if args.quick else 10.0
    if args.only:
        print(json.dumps(asyncio.run(measure(args.only, areas, seconds))))
        return
    print(f"signboard reads over {areas:,} areas, one at a time; target warm p50 <= 2 ms")
    with tempfile.TemporaryDirectory() as tmp:
        extra = [f"--areas={areas}", *(["--quick"] if args.quick else [])]
        for name, f in each_database(__file__, extra, tmp):
            print(
                f"{name:10s} warm p50 {f['warm_p50_ms']:.3f} ms (p99 {f['warm_p99_ms']:.3f}, CPU "
                f"{f['warm_cpu_p50_ms']:.3f}); anchor {f['anchor_p50_ms']:.3f} ms "
                f"(CPU {f['anchor_cpu_p50_ms']:.3f}); "
                f"ratio {f['warm_p50_ms'] / f['anchor_p50_ms']:.2f}; cold p50 {f['cold_p50_ms']:.3f} ms; "
                f"{f['requests']:,} requests"
            )
            if not args.quick and f["warm_p50_ms"] > 2.0:
                raise SystemExit(f"{name}: warm p50 {f['warm_p50_ms']:.3f} ms is over the 2 ms target")


if __name__ == "__main__":
    main()
