"""Benchmark: server CPU per request of two revisions, measured in the same run, taking turns.

    python bench/compare_checkouts.py                       # main against the working tree, 4 rounds
    python bench/compare_checkouts.py --before c7875ac --after main --rounds 4
    python bench/compare_checkouts.py --quick               # CI smoke: the working tree against itself

Each revision (a git revision, checked out into a temporary worktree, or `.` for this working tree)
runs as its own uvicorn worker (pinned to CPU 1 where `taskset` exists; the load generator runs on
CPU 0), each against its own copy of one seeded SQLite database (the demo city plus bulk-loaded
cases, as `bench/queue_page.py` seeds them, with this checkout's migrations): two processes never
share a SQLite file in a deployment, and writes of one would fail the other's with "database is
locked". A round measures each path on
each server in turn, one request at a time, and reads the server's CPU time (user + system, from
/proc) around the requests; rounds alternate which revision goes first. Paths:

- queue page: `departmentQueue`, the first 50 rows of the busiest department, as a staff member;
- report submission: `submitReport` of a new report somewhere in the demo city, as a resident.

Figures: the median over rounds of CPU milliseconds per request, per revision and path, and
after/before, with every round's ratio so the noise is visible. The machine is shared and noisy:
only a ratio measured this way, in one run, means anything.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support.runner import (  # noqa: E402
    PRODUCTION_SERVER_ENV,
    free_port,
    pin_client,
    pinned,
    process_cpu_seconds,
    stop,
)

# The queue page's seeding, query and sign-in come from its own script (imported by name: mypy sees each
# bench script as a top-level module, so a static import would name one file twice).
queue_page: Any = importlib.import_module("bench.queue_page")
QUERY, SIGN_IN, STAFF, prepare = queue_page.QUERY, queue_page.SIGN_IN, queue_page.STAFF, queue_page.prepare

REGISTER = "mutation($i: DeviceRegisterInput!) { deviceRegister(input: $i) { accessToken } }"
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  report { id } case { id reference status reporterCount } userErrors { code field message } } }"""
PASSWORD = "demo-password-2026"  # the demo city's (server/seed.py)
CATEGORIES = ["noise.construction", "light.led_billboard", "waste.overflowing_bins"]


@dataclass
class Server:
    name: str
    checkout: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # per path, one figure per round

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return process_cpu_seconds(self.process.pid)


def checkout(revision: str, into: Path) -> Path:
    """`.` is this working tree; anything else is checked out (detached) into a temporary worktree."""
    if revision == ".":
        return ROOT
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(into), revision], check=True
    )
    return into


def start(server: Server, url: str, data: Path) -> None:
    # The server must import its own checkout, not this one (an editable install points here).
    probe = subprocess.run(
        [sys.executable, "-c", "import server; print(server.__file__)"],
        cwd=server.checkout,
        env={**os.environ, "PYTHONPATH": str(server.checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(server.checkout)), probe.stdout
    server.port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(server.checkout),
        "DATABASE_URL": url,
        "DATA_DIR": str(data),
        **PRODUCTION_SERVER_ENV,
        # Deliveries are not what is compared; without a worker the two servers do the same work.
        "DELIVERY_WORKER_IN_PROCESS": "false",
        "LOG_LEVEL": "warning",
    }
    pin = pinned()
    server.process = subprocess.Popen(
        [*pin, sys.executable, "-m", "uvicorn", "server.main:app", "--port", str(server.port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
        cwd=server.checkout,
        env=env,
    )  # fmt: skip


def copy_database(source: Path, target: Path) -> Path:
    """A consistent copy (SQLite's backup API includes what is still in the WAL)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


async def wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"no server at {client.base_url}")


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


async def paths(client: httpx.AsyncClient, department: str) -> dict[str, Callable[[], Awaitable[None]]]:
    """Each path as one request to make, with its caller signed in on this server."""
    signed_in = await gql(client, SIGN_IN, {"i": {"login": STAFF, "password": PASSWORD}})
    staff = signed_in["signIn"]["accessToken"]
    resident = (await gql(client, REGISTER, {"i": {"deviceKey": uuid.uuid4().hex * 2}}))["deviceRegister"]
    rng = random.Random(7)

    async def queue_page() -> None:
        page = await gql(client, QUERY, {"d": department, "order": "CREATED"}, staff)
        assert page["departmentQueue"]["nodes"]

    async def report_submission() -> None:
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
        done = (await gql(client, SUBMIT, {"input": report}, resident["accessToken"]))["submitReport"]
        assert not done["userErrors"], done

    return {"queue page": queue_page, "report submission": report_submission}


async def measure(servers: list[Server], rounds: int, requests: int, department: str) -> None:
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}", timeout=60) for s in servers]
    try:
        for client in clients:
            await wait_ready(client)
        calls = [await paths(client, department) for client in clients]
        for call in calls:  # warm both servers on every path
            for request in call.values():
                for _ in range(max(5, requests // 5)):
                    await request()
        for r in range(rounds):
            order = list(range(len(servers))) if r % 2 == 0 else list(reversed(range(len(servers))))
            for path in calls[0]:
                for i in order:
                    server = servers[i]
                    began = server.cpu_seconds()
                    for _ in range(requests):
                        await calls[i][path]()
                    spent = server.cpu_seconds() - began
                    server.cpu_ms.setdefault(path, []).append(spent * 1000 / requests)
    finally:
        for client in clients:
            await client.aclose()


def report(before: Server, after: Server) -> None:
    for path in before.cpu_ms:
        b, a = before.cpu_ms[path], after.cpu_ms[path]
        ratio = statistics.median(a) / statistics.median(b)
        ratios = ", ".join(f"{y / x:.3f}" for x, y in zip(b, a, strict=True))
        print(
            f"{path}: before {statistics.median(b):.2f} ms, after {statistics.median(a):.2f} ms server CPU "
            f"per request (medians of {len(b)} rounds); after/before {ratio:.3f}"
            f" (rounds: {ratios})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="main", help="a git revision, or . (default main)")
    parser.add_argument("--after", default=".", help="a git revision, or . for this working tree (default)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=300, help="requests per path, server and round")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="CI smoke: this working tree against itself")
    args = parser.parse_args()
    if args.quick:
        args.before, args.after, args.rounds, args.requests, args.cases = ".", ".", 2, 10, 500
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    servers = [Server("before", tmp / "before"), Server("after", tmp / "after")]
    try:
        servers[0].checkout = checkout(args.before, tmp / "before")
        servers[1].checkout = checkout(args.after, tmp / "after")
        seeded = tmp / "bench.sqlite3"
        busy = asyncio.run(prepare(f"sqlite://{seeded}", args.cases))
        from strawberry.relay import to_base64

        pin_client()
        for server in servers:
            start(
                server,
                f"sqlite://{copy_database(seeded, tmp / f'{server.name}.sqlite3')}",
                tmp / f"data-{server.name}",
            )
        print(
            f"server CPU per request: before {args.before} against after {args.after}, {args.rounds} rounds "
            f"of {args.requests} requests per path; {args.cases:,} cases; load {os.getloadavg()}",
            flush=True,
        )
        began = time.perf_counter()
        asyncio.run(measure(servers, args.rounds, args.requests, to_base64("Department", busy)))
        report(*servers)
        print(f"({time.perf_counter() - began:.0f} s)")
    finally:
        for server in servers:
            if server.process is not None:
                stop(server.process)
            if server.checkout != ROOT and server.checkout.exists():
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(server.checkout)]
                )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
