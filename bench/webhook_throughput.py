"""Benchmark: webhook delivery to a local receiver, two workers on PostgreSQL.

    python bench/webhook_throughput.py            # ~12 endpoints x 400 cases (about 5,000 deliveries)
    python bench/webhook_throughput.py --quick    # a CI smoke run (seconds)

Seeding, the realistic way, in this process: the demo city; K webhook endpoints registered with
`webhooks.endpoints.create_endpoint` (each with its own signing secret, all hearing every event type)
pointing at the receiver; C reports submitted through `reports.service.submit_report` (each writes
its outbox rows); then the production planner (`webhooks.planning.plan_webhooks`) turns the outbox
into deliveries, with their real payloads and per-case ordering keys (`case:<id>`: one endpoint's
deliveries about one case go out one at a time, in order). Planning is timed on its own and is not
part of the delivery figure.

The receiver is a bare ASGI app under uvicorn (httptools, uvloop) on 127.0.0.1 in its own process.
It answers 200 after a short pause (`--receiver-delay-ms`, default 5: a receiver doing a little
work, which also widens the window in which a second request with the same id would overlap). It
verifies every request's Standard Webhooks signature with the endpoint's secret, counts deliveries
and duplicates, and records every `webhook-id` that arrived while another request with the same id
was still in flight ("made twice at once").

Then two `python -m server worker` processes start together (production environment, the default
DELIVERY_* settings, WEBHOOK_ALLOWED_HOSTS=127.0.0.1). Measured: from the receiver's first request
to the moment the database shows every delivery DELIVERED (deliveries/s), the same from the workers'
launch (including their start-up), and CPU seconds (utime + stime from /proc) per 1,000 deliveries
over that window: the workers', and that of the PostgreSQL backends serving them (this database's
connections, where /proc shows them), beside the whole machine's busy cores (other work included).
Checked: every delivery DELIVERED, every signature valid, no id received twice at once.
Target (issue 14): at least 300 deliveries/s.

Cores: where `taskset` exists and there are two or more CPUs, both workers run on CPU 1 and the
receiver and this process on CPU 0; PostgreSQL is not pinned and shares both. With exactly two
cores that is the most a two-worker figure can be kept apart from the load generator.

The database is BENCH_POSTGRES_URL (wiped; default: a local `bench` database, created if missing).
Outside CI an unreachable PostgreSQL is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.support.postgres import postgres_url, reset_postgres  # noqa: E402
from bench.support.runner import (  # noqa: E402
    PINNED,
    PRODUCTION_SERVER_ENV,
    free_port,
    pin_client,
    pinned,
    process_cpu_seconds,
    stop,
)

TARGET_PER_SECOND = 300
WORKERS = 2


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# The receiver (its own process: `--receiver PORT SECRETS_FILE`)


def receiver_app(secrets: dict[str, str], delay: float) -> Any:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    verifiers = {endpoint: Webhook(secret) for endpoint, secret in secrets.items()}
    in_flight: Counter[str] = Counter()
    seen: set[str] = set()
    state: dict[str, Any] = {
        "received": 0,
        "duplicates": 0,
        "bad_signatures": 0,
        "at_once": [],
        "first": None,
        "last": None,
    }

    async def respond(send: Any, status: int, body: bytes = b"") -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path == "/stats":
            await respond(send, 200, json.dumps({**state, "unique": len(seen)}).encode())
            return
        if scope["method"] != "POST" or not path.startswith("/hook/"):
            await respond(send, 404)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        msg_id = headers.get("webhook-id", "")
        in_flight[msg_id] += 1
        try:
            if in_flight[msg_id] > 1:
                state["at_once"].append(msg_id)
            now = time.time()
            state["first"] = state["first"] or now
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            verifier = verifiers.get(path.removeprefix("/hook/"))
            try:
                if verifier is None:
                    raise WebhookVerificationError("unknown endpoint")
                verifier.verify(body, headers)
            except WebhookVerificationError:
                state["bad_signatures"] += 1
                await respond(send, 400)
                return
            if delay:
                await asyncio.sleep(delay)
            state["received"] += 1
            if msg_id in seen:
                state["duplicates"] += 1
            seen.add(msg_id)
            state["last"] = time.time()
            await respond(send, 200)
        finally:
            in_flight[msg_id] -= 1

    return app


def run_receiver(port: int, secrets_file: str, delay_ms: float) -> None:
    import uvicorn

    secrets = json.loads(Path(secrets_file).read_text())
    app = receiver_app(secrets, delay_ms / 1000)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


# Seeding (this process, Tortoise)


async def seed(url: str, endpoints: int, cases: int, port: int) -> dict[str, Any]:
    """Endpoints, cases and their planned deliveries; returns the secrets and the planning figures."""
    from tortoise.context import TortoiseContext

    from bench.support.runner import fresh_database
    from delivery.models import Delivery
    from delivery.planning import plan_pending
    from identity.models import Role, User
    from reports import service
    from reports.store import RoutingCache
    from server.db import tortoise_config
    from server.seed import seed_demo
    from webhooks.addresses import AllowList
    from webhooks.endpoints import EndpointChanges, create_endpoint
    from webhooks.planning import plan_webhooks

    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        admin = await User.create(role=Role.ADMIN, username=f"bench-admin-{uuid.uuid4().hex[:8]}")
        allow = AllowList.parse(["127.0.0.1"])
        secrets: dict[str, str] = {}
        for i in range(endpoints):
            changes = EndpointChanges(url=f"http://127.0.0.1:{port}/hook/{i}", description=f"bench {i}")
            endpoint, secret = await create_endpoint(admin, changes, allow)
            secrets[str(i)] = secret
        snapshot = await RoutingCache().current()
        resident = await User.create(role=Role.CITIZEN)
        for i in range(cases):  # far enough apart not to be grouped into one case
            location = service.Location(30.19 + (i % 50) * 0.003, 120.06 + (i // 50) * 0.003)
            submission = service.Submission(
                client_id=uuid.uuid4().hex,
                category_code="noise.neighbour",
                location=location,
                description="bench",
            )
            await service.submit_report(snapshot, resident, submission, per_hour_limit=None)
        began = time.perf_counter()
        rows = 0
        while planned := await plan_pending([plan_webhooks], 500):
            rows += planned
        planning = time.perf_counter() - began
        deliveries = await Delivery.all().count()
        keys = len(await Delivery.all().distinct().values_list("target_id", "ordering_key"))
    return {
        "secrets": secrets,
        "outbox_rows": rows,
        "deliveries": deliveries,
        "ordering_keys": keys,
        "planning_seconds": planning,
    }


async def backends(url: str) -> list[int]:
    """The PostgreSQL server processes serving the workers (their pooled connections to this database)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def database_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend still running (readable in /proc on this machine)."""
    spent = {}
    for pid in pids:
        try:
            spent[pid] = process_cpu_seconds(pid)
        except (OSError, IndexError):  # gone, or not ours to read
            continue
    return spent


async def statuses(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM delivery GROUP BY status")
        attempts = await conn.fetchval("SELECT count(*) FROM delivery_attempt")
    finally:
        await conn.close()
    return {**{str(r["status"]): int(r["n"]) for r in rows}, "attempts": int(attempts)}


# The run


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"receiver exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/stats", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("receiver not ready")


def measure(url: str, endpoints: int, cases: int, delay_ms: float, limit: float) -> dict[str, Any]:
    port = free_port()
    seeded = asyncio.run(seed(url, endpoints, cases, port))
    total = seeded["deliveries"]
    with tempfile.TemporaryDirectory() as tmp:
        secrets_file = Path(tmp) / "secrets.json"
        secrets_file.write_text(json.dumps(seeded["secrets"]))
        receiver = subprocess.Popen(
            [*pinned(0), sys.executable, __file__, "--receiver", str(port), str(secrets_file)]
            + ["--receiver-delay-ms", str(delay_ms)],
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        workers: list[subprocess.Popen[bytes]] = []
        try:
            wait_ready(base, receiver)
            env = {
                **os.environ,
                **PRODUCTION_SERVER_ENV,
                "DATABASE_URL": url,
                "DATA_DIR": str(Path(tmp) / "data"),
                "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
                "LOG_LEVEL": "warning",
            }
            launched = time.time()
            workers = [
                subprocess.Popen([*pinned(1), sys.executable, "-m", "server", "worker"], cwd=ROOT, env=env)
                for _ in range(WORKERS)
            ]
            with httpx.Client(base_url=base, timeout=5) as http:
                cpu_start: float | None = None
                db_start: dict[int, float] = {}
                busy_start = machine_busy()
                while True:
                    stats = http.get("/stats").json()
                    if cpu_start is None and stats["received"]:
                        cpu_start = sum(process_cpu_seconds(w.pid) for w in workers)
                        busy_start = machine_busy()
                        db_start = database_cpu(asyncio.run(backends(url)))
                    if stats["unique"] >= total:
                        counts = asyncio.run(statuses(url))
                        if counts.get("delivered", 0) >= total:
                            break
                    for w in workers:
                        if w.poll() is not None:
                            raise SystemExit(f"a worker exited with {w.returncode}")
                    if time.time() - launched > limit:
                        raise SystemExit(f"not all delivered within {limit:g} s: {stats['unique']}/{total}")
                    time.sleep(0.02)
                finished = time.time()
                cpu_end = sum(process_cpu_seconds(w.pid) for w in workers)
                busy_end = machine_busy()
                db_end = database_cpu(asyncio.run(backends(url)))
                stats = http.get("/stats").json()
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(30)
            stop(receiver)
    counts = asyncio.run(statuses(url))
    window = finished - stats["first"]
    busy = (busy_end[0] - busy_start[0]) / max(busy_end[1] - busy_start[1], 1) * (os.cpu_count() or 1)
    return {
        **{k: v for k, v in seeded.items() if k != "secrets"},
        "per_second": total / window,
        "per_second_from_launch": total / (finished - launched),
        "window_seconds": window,
        "startup_seconds": stats["first"] - launched,
        "worker_cpu_per_1000": (cpu_end - (cpu_start or 0.0)) / total * 1000,
        "machine_cores_busy": busy,
        # Backends opened during the window count whole (their start-up is small beside the window).
        "database_cpu_per_1000": sum(v - db_start.get(pid, 0.0) for pid, v in db_end.items()) / total * 1000,
        "received": stats["received"],
        "duplicates": stats["duplicates"],
        "at_once": len(stats["at_once"]),
        "bad_signatures": stats["bad_signatures"],
        "statuses": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few deliveries only: proves it works")
    parser.add_argument("--endpoints", type=int, default=None)
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--receiver-delay-ms", type=float, default=5.0)
    parser.add_argument("--receiver", nargs=2, metavar=("PORT", "SECRETS_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        run_receiver(int(args.receiver[0]), args.receiver[1], args.receiver_delay_ms)
        return
    endpoints = args.endpoints or (2 if args.quick else 12)
    cases = args.cases or (10 if args.quick else 400)
    url = postgres_url()
    try:
        asyncio.run(reset_postgres(url))
    except (OSError, ConnectionError) as exc:
        if os.environ.get("CI"):
            raise
        print(f"PostgreSQL not reachable at {url} ({exc}): skipped")
        return
    pin_client()
    print(
        f"{endpoints} endpoints x {cases} cases, {WORKERS} workers (python -m server worker), "
        f"receiver pause {args.receiver_delay_ms:g} ms; "
        + ("workers on CPU 1, receiver and bench on CPU 0, PostgreSQL unpinned" if PINNED else "no pinning")
    )
    f = measure(url, endpoints, cases, args.receiver_delay_ms, limit=60 if args.quick else 600)
    print(
        f"seeded: {f['outbox_rows']} outbox rows planned into {f['deliveries']} deliveries "
        f"({f['ordering_keys']} ordering keys) in {f['planning_seconds']:.2f} s "
        f"({f['deliveries'] / max(f['planning_seconds'], 1e-9):.0f} deliveries/s planned, one process)"
    )
    print(
        f"delivered: {f['deliveries']} in {f['window_seconds']:.2f} s = {f['per_second']:.0f} deliveries/s "
        f"(first request to all DELIVERED; {f['per_second_from_launch']:.0f}/s counting the workers' "
        f"{f['startup_seconds']:.2f} s start-up)"
    )
    print(
        f"CPU per 1,000 deliveries: workers {f['worker_cpu_per_1000']:.2f} s, "
        f"their PostgreSQL backends {f['database_cpu_per_1000']:.2f} s; "
        f"machine: {f['machine_cores_busy']:.2f} of {os.cpu_count()} cores busy during the window"
    )
    print(
        f"receiver: {f['received']} requests, {f['duplicates']} duplicates, "
        f"{f['at_once']} made twice at once, {f['bad_signatures']} bad signatures; database: {f['statuses']}"
    )
    problems = []
    if f["statuses"].get("delivered") != f["deliveries"]:
        problems.append(f"not every delivery is DELIVERED: {f['statuses']}")
    if f["at_once"]:
        problems.append(f"{f['at_once']} deliveries made twice at once")
    if f["bad_signatures"]:
        problems.append(f"{f['bad_signatures']} bad signatures")
    verdict = "meets" if f["per_second"] >= TARGET_PER_SECOND else "BELOW"
    note = " (quick run: too few deliveries to judge)" if args.quick else ""
    print(f"target >= {TARGET_PER_SECOND} deliveries/s: {f['per_second']:.0f}/s, {verdict} the target{note}")
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
