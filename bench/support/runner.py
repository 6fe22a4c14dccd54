"""Running one benchmark per database: SQLite in a temporary folder, then PostgreSQL.

Each database is measured in its own process (`<script> --only <url> ...`), because Tortoise keeps
per-process state from the first engine it served. The child prints its figures as JSON on its last
line. Outside CI an unreachable PostgreSQL is skipped rather than failing the run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.support.postgres import postgres_url, reset_postgres
from server.db import apply_migrations
from server.settings import Limits, Settings

# A production server process for measuring: no rate limits to measure against, and an SMS code sender
# (production refuses the log one) that the benchmarks never use.
PRODUCTION_SERVER_ENV = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "bench-secret-key-0123456789-abcdefghij",
    "REQUESTS_PER_MINUTE": "100000000",
    "REPORT_SUBMISSIONS_PER_HOUR": "100000000",
    "OTP_SENDER": "sms",
    "SMS_PROVIDER": "aliyun",
    "ALIYUN_ACCESS_KEY_ID": "bench",
    "ALIYUN_ACCESS_KEY_SECRET": "bench",
}


# Servers run on CPU 1 and the load generator on CPU 0, where `taskset` exists and there are two CPUs,
# so that the client's own CPU does not count against the server's (issue 18).
PINNED = bool(shutil.which("taskset")) and (os.cpu_count() or 1) > 1


def pinned(cpu: int = 1) -> list[str]:
    """The command prefix that runs a server on `cpu` (empty where pinning is not possible)."""
    return ["taskset", "-c", str(cpu)] if PINNED else []


def pin_client() -> None:
    """Run the rest of this (load-generating) process on CPU 0, away from the pinned servers."""
    if PINNED:
        os.sched_setaffinity(0, {0})


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far, every thread of it (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin_measured() -> None:
    """Run this process on CPU 1 when it measures domain calls in-process: it is the server there."""
    if PINNED:
        os.sched_setaffinity(0, {1})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[bytes], grace: float = 60) -> None:
    """Stop a server or worker the benchmark started: SIGTERM, then SIGKILL if it is still shutting down
    after `grace` seconds (a loaded CI machine once took more than 10 s). The figures are already taken."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"process {process.pid} still running {grace:.0f} s after SIGTERM; killed", file=sys.stderr)
        process.kill()
        process.wait()


def each_database(script: str, args: Sequence[str], tmp: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(database name, the figures its child process printed), SQLite first."""
    urls = {"SQLite": f"sqlite://{tmp}/bench.sqlite3", "PostgreSQL": postgres_url()}
    for name, url in urls.items():
        command = [sys.executable, script, "--only", url, *args]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            if name == "PostgreSQL" and "Connect" in done.stderr and not os.environ.get("CI"):
                print(f"{name}: not reachable at {url}, skipped")
                continue
            sys.stderr.write(done.stderr)
            raise SystemExit(f"{name} run failed")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        record(Path(script).stem, name, figures)
        yield name, figures


def record(bench: str, database: str, figures: dict[str, Any]) -> None:
    """Hand one database's figures to `bench/run_all.py` (a JSON line in BENCH_RESULTS) when it runs
    this benchmark; nothing otherwise."""
    results = os.environ.get("BENCH_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as out:
            out.write(
                json.dumps({"bench": bench, "database": database, "figures": figures}, default=str) + "\n"
            )


async def fresh_database(url: str) -> None:
    """An empty, migrated database at `url` (PostgreSQL's is wiped first)."""
    if url.startswith("postgres"):
        await reset_postgres(url)
    await apply_migrations(url)


def bench_settings(url: str, media: Path) -> Settings:
    """Production settings for an in-process app, without a request rate limit to measure against."""
    return Settings(
        database_url=url,
        media_root=media,
        secret_key="bench-secret-key-bench-secret-key-0123456789",
        environment="production",
        limits=Limits(requests_per_minute=10_000_000),
        # production refuses the log code sender; the benchmarks send no codes
        otp_sender="sms",
        sms_provider="aliyun",
        aliyun_access_key_id="bench",
        aliyun_access_key_secret="bench",
    )
