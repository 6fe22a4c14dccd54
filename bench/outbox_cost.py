"""Benchmark: what the outbox adds to a report submission, against the same submission without it.

    python bench/outbox_cost.py            # SQLite, then PostgreSQL (BENCH_POSTGRES_URL) if reachable
    python bench/outbox_cost.py --quick    # a CI smoke run (seconds)

The app runs in process behind httpx's ASGI transport, with its lifespan (so its outbox relay and
background jobs run as in a server). A resident submits reports one at a time, each somewhere new.
Rounds alternate two arms in one process: "outbox", the product as it is, and "none", the same
submissions with `kernel.outbox.emit` replaced by a no-op for the round (no row written, so nothing
for the relay to publish or mark). A round's figure is the process's CPU time per submission, its
quiet tail included (the relay marks rows published after the requests), and the wall-clock median.
Target (issue 14): the outbox adds at most 10 %. By default the delivery worker runs elsewhere (as
with `envcase worker`), so the figure is the outbox's own cost; `--with-worker` runs it in the process
too, adding what planning notifications and webhooks for each change costs. PostgreSQL: the
database at BENCH_POSTGRES_URL is wiped (default: a local `bench` database, created if missing).
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import bench_settings, each_database, fresh_database  # noqa: E402
from kernel import outbox  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import seed_demo  # noqa: E402
from server.settings import Limits  # noqa: E402

REGISTER = "mutation($i: DeviceRegisterInput!) { deviceRegister(input: $i) { accessToken } }"
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  case { id reporterCount } userErrors { code message } } }"""
CATEGORIES = ["noise.construction", "light.led_billboard", "waste.overflowing_bins"]
ARMS = ("outbox", "none")


@contextmanager
def without_outbox() -> Iterator[None]:
    real = outbox.emit

    async def nothing(*rows: outbox.OutboxEvent) -> None:
        return None

    outbox.emit = nothing  # the "none" arm's one difference
    try:
        yield
    finally:
        outbox.emit = real


async def measure(url: str, rounds: int, per_round: int, media: Path, with_worker: bool) -> dict[str, Any]:
    await fresh_database(url)
    unlimited = Limits(requests_per_minute=10_000_000, report_submissions_per_hour=10_000_000)
    settings = bench_settings(url, media).model_copy(
        update={"limits": unlimited, "delivery_worker_in_process": with_worker}
    )
    rng = random.Random(14)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        app = create_app(settings, init_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            device = {"deviceKey": uuid.uuid4().hex * 2}
            registered = await client.post("/graphql", json={"query": REGISTER, "variables": {"i": device}})
            token = registered.json()["data"]["deviceRegister"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}

            async def submit() -> float:
                report = {
                    "clientId": str(uuid.uuid4()),
                    "categoryCode": rng.choice(CATEGORIES),
                    "description": "bench",
                    "location": {
                        "latitude": rng.uniform(30.19, 30.33),
                        "longitude": rng.uniform(120.06, 120.24),
                        "accuracyM": 10.0,
                    },
                }
                began = time.perf_counter()
                response = await client.post(
                    "/graphql", json={"query": SUBMIT, "variables": {"input": report}}, headers=headers
                )
                spent = time.perf_counter() - began
                assert response.json()["data"]["submitReport"]["userErrors"] == [], response.text
                return spent

            async def one_round(arm: str) -> tuple[float, float]:
                cpu = time.process_time()
                walls = [await submit() for _ in range(per_round)]
                await asyncio.sleep(0.6)  # the relay's next passes mark what it published
                spent = time.process_time() - cpu
                return spent * 1000 / per_round, statistics.median(walls) * 1000

            for _ in range(max(5, per_round // 4)):  # warm up
                await submit()
            cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
            wall: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for r in range(rounds):
                for arm in ARMS if r % 2 == 0 else reversed(ARMS):
                    if arm == "none":
                        with without_outbox():
                            c, w = await one_round(arm)
                    else:
                        c, w = await one_round(arm)
                    cpu[arm].append(c)
                    wall[arm].append(w)
            rows = await outbox.OutboxEvent.all().count()
            unpublished = await outbox.OutboxEvent.filter(published_at=None).count()
    assert unpublished == 0, f"{unpublished} of {rows} outbox rows never published"
    return {
        "cpu_ms": {arm: statistics.median(v) for arm, v in cpu.items()},
        "wall_p50_ms": {arm: statistics.median(v) for arm, v in wall.items()},
        "ratio": statistics.median(cpu["outbox"]) / statistics.median(cpu["none"]),
        "round_ratios": [o / n for o, n in zip(cpu["outbox"], cpu["none"], strict=True)],
        "outbox_rows": rows,
    }


def run_one(url: str, rounds: int, per_round: int, with_worker: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure(url, rounds, per_round, Path(tmp) / "media", with_worker))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few submissions only: proves it works")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--submissions", type=int, default=None, help="per arm and round")
    parser.add_argument("--with-worker", action="store_true", help="the delivery worker in the process too")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 8)
    per_round = args.submissions or (10 if args.quick else 200)
    if args.only:
        print(json.dumps(run_one(args.only, rounds, per_round, args.with_worker)))
        return
    worker = "in this process" if args.with_worker else "elsewhere"
    print(
        f"{rounds} rounds of {per_round} submissions per arm, one at a time; delivery worker {worker};"
        " target: outbox/none <= 1.10"
    )
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--rounds", str(rounds), "--submissions", str(per_round)]
        extra += ["--with-worker"] if args.with_worker else []
        for name, figures in each_database(__file__, extra, tmp):
            cpu, wall = figures["cpu_ms"], figures["wall_p50_ms"]
            rounds_text = ", ".join(f"{r:.3f}" for r in figures["round_ratios"])
            print(
                f"{name:10s} CPU per submission: outbox {cpu['outbox']:.2f} ms, none {cpu['none']:.2f} ms;"
                f" outbox/none {figures['ratio']:.3f} (rounds: {rounds_text}); wall p50 outbox"
                f" {wall['outbox']:.2f} ms, none {wall['none']:.2f} ms"
            )


if __name__ == "__main__":
    main()
