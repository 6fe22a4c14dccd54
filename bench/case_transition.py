"""Benchmark: one case transition (accept, start, resolve) over HTTP, as a department's staff sends it.

    python bench/case_transition.py            # SQLite, then PostgreSQL (BENCH_POSTGRES_URL) if reachable
    python bench/case_transition.py --quick    # a CI smoke run (seconds)

Each database is measured in its own process (Tortoise keeps per-process state from its first engine).
The app runs in process behind httpx's ASGI transport, so the figures are the server's own time for
a request: authentication, GraphQL, the conditional update, the event, and the response. Requests go
one at a time. Target (issue): p50 at most 10 ms. PostgreSQL: the database at BENCH_POSTGRES_URL is
wiped (default: a local `bench` database, created if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402

from bench.support.runner import bench_settings, each_database, fresh_database  # noqa: E402
from identity.models import Role, User  # noqa: E402
from reports import service  # noqa: E402
from reports.store import RoutingCache  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import load_demo_city, seed_demo  # noqa: E402

TRANSITION = """mutation($input: CaseTransitionInput!) { caseTransition(input: $input) {
  case { id status version } userErrors { code message } } }"""
SIGN_IN = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }"


async def open_cases(count: int) -> list[int]:
    """Routed cases in the West District's police queue, far enough apart not to be grouped."""
    snapshot = await RoutingCache().current()
    resident = await User.create(role=Role.CITIZEN)
    ids = []
    for i in range(count):
        location = service.Location(30.19 + (i % 50) * 0.003, 120.06 + (i // 50) * 0.003)
        submission = service.Submission(
            client_id=uuid.uuid4().hex,
            category_code="noise.neighbour",
            location=location,
            description="bench",
        )
        result = await service.submit_report(snapshot, resident, submission, per_hour_limit=None)
        assert result.case.department_id is not None, "the bench point fell outside the West District"
        ids.append(result.case.id)
    return ids


async def measure(url: str, count: int, media: Path) -> dict[str, float]:
    from strawberry.relay import to_base64

    await fresh_database(url)
    settings = bench_settings(url, media)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        cases = await open_cases(count)
        app = create_app(settings, init_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = {"login": "police.west", "password": load_demo_city()["password"]}
            response = await client.post("/graphql", json={"query": SIGN_IN, "variables": {"input": login}})
            headers = {"Authorization": f"Bearer {response.json()['data']['signIn']['accessToken']}"}
            figures: dict[str, float] = {}
            for action, extra in (("ACCEPT", {}), ("START", {}), ("RESOLVE", {"note": "done"})):
                times = []
                for case_id in cases:
                    variables = {"input": {"caseId": to_base64("Case", case_id), "action": action, **extra}}
                    began = time.perf_counter()
                    response = await client.post(
                        "/graphql", json={"query": TRANSITION, "variables": variables}, headers=headers
                    )
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.json()["data"]["caseTransition"]["userErrors"] == [], response.text
                times.sort()
                figures[f"{action.lower()}_p50_ms"] = statistics.median(times)
                figures[f"{action.lower()}_p99_ms"] = times[min(len(times) - 1, int(len(times) * 0.99))]
    return figures


def run_one(url: str, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure(url, count, Path(tmp) / "media"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few cases only: proves the benchmark works")
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    count = args.cases or (20 if args.quick else 400)
    if args.only:
        print(json.dumps(run_one(args.only, count)))
        return
    print(f"{count} cases; one request at a time; target p50 <= 10 ms")
    with tempfile.TemporaryDirectory() as tmp:
        for name, figures in each_database(__file__, ["--cases", str(count)], tmp):
            line = "  ".join(f"{k} {v:.2f}" for k, v in figures.items())
            print(f"{name:10s} {line}")


if __name__ == "__main__":
    main()
