"""Benchmark: does throughput grow with API processes? The queue page and report submissions with 1, 2
and 4 `python -m server run` processes on one PostgreSQL database, requests spread over them in turn.

    python bench/scale_out.py            # 1, 2 and 4 processes, ~20 s of load per figure
    python bench/scale_out.py --quick    # CI smoke run: 1 and 2 processes, a few requests each

PostgreSQL only (BENCH_POSTGRES_URL, wiped; the default is the local `bench` database): several
processes on SQLite would measure its one writer, not this code. An unreachable PostgreSQL is reported
and skipped (exit 0) outside CI.

Method. For each process count the servers are started fresh (one uvicorn worker each, production
settings, no in-process delivery worker, no request limits), warmed with a few requests each, then
driven by this script's client (httpx, `--concurrency` requests in flight, spread round-robin) for a
fixed number of requests per phase. Throughput is requests over wall time. CPU is read from
/proc/<pid>/stat of every server process before and after each phase and summed, so "server CPU per
request" counts all processes; the client's own CPU per request is reported beside it, since on a
small machine the client competes with the servers for the same cores (the figure to compare across
process counts is then server CPU per request, with the machine's load average beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.support.postgres import postgres_url, reset_postgres  # noqa: E402
from bench.support.runner import PRODUCTION_SERVER_ENV, free_port, process_cpu_seconds, stop  # noqa: E402
from server.seed import load_demo_city  # noqa: E402

SIGN_IN = "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }"
NEW_DEVICE = """mutation($i: DeviceRegisterInput!) { deviceRegister(input: $i) { accessToken } }"""
DEPARTMENTS = "{ departments(first: 50) { nodes { id code } } }"
QUEUE = """query($d: ID!) {
  departmentQueue(departmentId: $d, orderBy: DUE, first: 50) {
    nodes { id reference status priority reporterCount thumbnailUrl dueAt overdue
      category { code nameZh nameEn } department { code name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
SUBMIT = """mutation($input: SubmitReportInput!) { submitReport(input: $input) {
  case { id reference } userErrors { code message } } }"""


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Servers:
    def __init__(self, count: int, url: str, data: Path) -> None:
        self.env = {
            **os.environ,
            **PRODUCTION_SERVER_ENV,
            "DATABASE_URL": url,
            "DATA_DIR": str(data),
            "MEDIA_ROOT": str(data / "media"),
            "DELIVERY_WORKER_IN_PROCESS": "false",
            "LOG_LEVEL": "WARNING",
        }
        self.env.pop("REDIS_URL", None)
        self.ports = [free_port() for _ in range(count)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "server", "run", "--port", str(port)],
                cwd=REPO,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for port in self.ports
        ]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for port, process in zip(self.ports, self.processes, strict=True):
            while True:
                if process.poll() is not None:
                    assert process.stderr is not None
                    raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("servers not ready")
                time.sleep(0.2)

    def cpu(self) -> float:
        return sum(process_cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{response.status_code}: {body}")
    return body["data"]


def report_input(index: int) -> dict[str, Any]:
    return {
        "clientId": str(uuid.uuid4()),
        "categoryCode": "noise.neighbour",
        "description": f"Loud music, report {index}",
        "location": {"latitude": 30.26 + (index % 50) * 0.0001, "longitude": 120.10, "accuracyM": 8.0},
    }


async def phase(
    clients: list[httpx.AsyncClient], servers: Servers, requests: int, concurrency: int, call: Any
) -> dict[str, float]:
    """`requests` calls, `concurrency` in flight, spread round-robin over the processes."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async def drive() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            await call(clients[index % len(clients)], index)

    cpu_before, client_before, began = servers.cpu(), client_cpu(), time.perf_counter()
    await asyncio.gather(*(drive() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    server_cpu, own_cpu = servers.cpu() - cpu_before, client_cpu() - client_before
    return {
        "requests": requests,
        "wall_s": round(wall, 3),
        "per_s": round(requests / wall, 1),
        "server_cpu_ms": round(server_cpu * 1000 / requests, 2),
        "client_cpu_ms": round(own_cpu * 1000 / requests, 2),
        "load": round(os.getloadavg()[0], 2),
    }


async def measure(count: int, url: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    servers = Servers(count, url, data)
    try:
        await asyncio.to_thread(servers.wait_ready)
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        clients = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits)
            for port in servers.ports
        ]
        try:
            password = load_demo_city()["password"]
            login = {"login": "police.west", "password": password}
            staff = (await gql(clients[0], SIGN_IN, {"i": login}))["signIn"]["accessToken"]
            departments = (await gql(clients[0], DEPARTMENTS, {}, staff))["departments"]["nodes"]
            department = next(d["id"] for d in departments if d["code"] == "police-west")
            residents = [
                (await gql(clients[0], NEW_DEVICE, {"i": {"deviceKey": uuid.uuid4().hex * 2}}))[
                    "deviceRegister"
                ]["accessToken"]
                for _ in range(8)
            ]

            async def queue_page(client: httpx.AsyncClient, _: int) -> None:
                await gql(client, QUEUE, {"d": department}, staff)

            async def submission(client: httpx.AsyncClient, index: int) -> None:
                done = await gql(
                    client, SUBMIT, {"input": report_input(index)}, residents[index % len(residents)]
                )
                if done["submitReport"]["userErrors"]:
                    raise RuntimeError(done["submitReport"]["userErrors"])

            for client in clients:  # warm every process (imports, caches, connections)
                for index in range(args.warmup):
                    await queue_page(client, index)
                    await submission(client, index)
            submissions = await phase(clients, servers, args.requests, args.concurrency, submission)
            queue = await phase(clients, servers, args.requests, args.concurrency, queue_page)
        finally:
            for client in clients:
                await client.aclose()
    finally:
        servers.stop()
    return {"processes": count, "queue_page": queue, "submissions": submissions}


def prepare(url: str, data: Path) -> None:
    asyncio.run(reset_postgres(url))
    env = {**os.environ, **PRODUCTION_SERVER_ENV, "DATABASE_URL": url, "DATA_DIR": str(data)}
    for command in (["migrate"], ["seed-demo"]):
        subprocess.run(
            [sys.executable, "-m", "server", *command], cwd=REPO, env=env, check=True, capture_output=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 and 2 processes, a few requests: proves it works"
    )
    parser.add_argument("--processes", default=None, help="comma-separated process counts (default 1,2,4)")
    parser.add_argument("--requests", type=int, default=None, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=None)
    args = parser.parse_args()
    counts = [int(n) for n in (args.processes or ("1,2" if args.quick else "1,2,4")).split(",")]
    args.requests = args.requests or (40 if args.quick else 1500)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 20)
    url = postgres_url()
    data = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        prepare(url, data)
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            raise
        print(f"PostgreSQL: not reachable at {url} ({exc!r}); skipped")
        return
    print(
        f"scale-out on PostgreSQL, {os.cpu_count()} CPUs; {args.requests} requests per figure, "
        f"{args.concurrency} in flight; load before: {os.getloadavg()}"
    )
    results = []
    for count in counts:
        result = asyncio.run(measure(count, url, data, args))
        results.append(result)
    header = (
        f"{'processes':>9} {'operation':<12} {'req/s':>8} {'wall s':>7} "
        f"{'server CPU ms/req':>18} {'client CPU ms/req':>18} {'load':>5}"
    )
    print(header)
    for result in results:
        for name in ("queue_page", "submissions"):
            row = result[name]
            print(
                f"{result['processes']:>9} {name:<12} {row['per_s']:>8} {row['wall_s']:>7} "
                f"{row['server_cpu_ms']:>18} {row['client_cpu_ms']:>18} {row['load']:>5}"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
