"""Benchmark of accepting uploads: 4 MiB resumable-upload chunks over a real uvicorn on 127.0.0.1.

    python bench/upload_intake.py            # full run: 320 uploads at concurrency 16, plus c=1 (~1 min)
    python bench/upload_intake.py --quick    # CI smoke test: 48 uploads, a few seconds

One uvicorn worker (uvloop + httptools, as `python -m server run` serves) on a throwaway SQLite
database (or DATABASE_URL). Upload sessions are opened through GraphQL first (not measured); then
each upload's 4 MiB body is sent as one `PATCH /uploads/{id}` with a bearer token, through the whole
middleware stack, streamed to disk by the route. The client is raw asyncio sockets on keep-alive
connections so it costs as little CPU as possible on a shared machine. The same transfer into a bare
Starlette route (aiofiles, no auth, no database) runs as an anchor: on a noisy machine compare the
ratio to it, as bench/photo_pipeline.py does with its full-decode anchor.

Figures: server CPU per upload (utime + stime of the server process from /proc/<pid>/stat), extra
peak RSS per concurrent upload (VmHWM after the run, reset before it via /proc/<pid>/clear_refs,
minus VmRSS before), and uploads/s. Targets: <= 7 ms CPU, <= 1 MiB per concurrent upload, >= 150/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.support.runner import free_port, pin_client, pinned, stop  # noqa: E402

UPLOAD_BYTES = 4 * 1024 * 1024
TARGET_CPU_MS = 7.0
TARGET_MIB_PER_UPLOAD = 1.0
TARGET_PER_SECOND = 150.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def graphql(port: int, query: str, variables: dict, token: str | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={
            "content-type": "application/json",
            **({"authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def start_server(directory: Path, port: int, app: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite://{directory / 'bench.sqlite3'}",
        "DATA_DIR": str(directory),
        "MEDIA_ROOT": str(directory / "media"),
        "SECRET_KEY": "bench-secret-key-0123456789-0123456789",
        "REQUESTS_PER_MINUTE": "1000000",
        "LOG_LEVEL": "warning",
        "ANCHOR_DIR": str(directory / "anchor"),
    }
    subprocess.run(
        [sys.executable, "-m", "server", "migrate"], cwd=REPO, env=env, check=True, capture_output=True
    )
    server = subprocess.Popen(
        [
            *pinned(),
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--app-dir",
            str(REPO),
        ],
        cwd=REPO,
        env=env,
    )
    deadline = time.monotonic() + 120  # a loaded shared machine took more than 10 s to import the app
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the server did not start")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing")


START = (
    "mutation($input: PhotoUploadStartInput!) "
    "{ photoUploadStart(input: $input) { upload { id } userErrors { code } } }"
)


def open_uploads(port: int, token: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        digest = hashlib.sha256(index.to_bytes(8, "big")).hexdigest()  # finish is not part of this benchmark
        data = graphql(port, START, {"input": {"byteSize": UPLOAD_BYTES, "sha256": digest}}, token)
        ids.append(data["photoUploadStart"]["upload"]["id"])
    return ids


async def send_uploads(
    port: int, token: str, upload_ids: list[str], concurrency: int, body: bytes
) -> list[float]:
    """PATCH each upload's whole body; `concurrency` keep-alive connections share the work."""
    queue = list(reversed(upload_ids))
    latencies: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                upload_id = queue.pop()
                head = (
                    f"PATCH /uploads/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nUpload-Offset: 0\r\n"
                    f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                began = time.perf_counter()
                writer.write(head)
                writer.write(body)
                await writer.drain()
                response = await reader.readuntil(b"\r\n\r\n")
                if not response.startswith(b"HTTP/1.1 204"):
                    raise RuntimeError(response.decode(errors="replace"))
                latencies.append(time.perf_counter() - began)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies


def measure(
    port: int, pid: int, token: str, upload_ids: list[str], concurrency: int, body: bytes
) -> dict[str, float]:
    count = len(upload_ids)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the server's peak RSS to its current RSS
    rss_before = status_kib(pid, "VmRSS")
    (user_before, system_before), wall_before = cpu_seconds(pid), time.perf_counter()
    latencies = asyncio.run(send_uploads(port, token, upload_ids, concurrency, body))
    wall, (user, system) = time.perf_counter() - wall_before, cpu_seconds(pid)
    user, system = user - user_before, system - system_before
    return {
        "uploads": count,
        "concurrency": concurrency,
        "per_second": count / wall,
        "cpu_ms": (user + system) / count * 1000,
        "system_ms": system / count * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "extra_rss_mib": (status_kib(pid, "VmHWM") - rss_before) / 1024,
    }


# --- anchor: the same transfer into a bare Starlette route (no auth, no database, no bookkeeping) ---


def anchor_app() -> object:
    """`uvicorn bench.upload_intake:anchor` serves this: what streaming 4 MiB to disk costs here."""
    import aiofiles
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    directory = Path(os.environ["ANCHOR_DIR"])
    directory.mkdir(parents=True, exist_ok=True)

    async def receive(request: Request) -> Response:
        async with aiofiles.open(directory / request.path_params["upload_id"], "wb") as out:
            async for chunk in request.stream():
                await out.write(chunk)
        return Response(status_code=204)

    async def healthz(request: Request) -> Response:
        return Response(status_code=200)

    return Starlette(
        routes=[Route("/uploads/{upload_id}", receive, methods=["PATCH"]), Route("/healthz", healthz)]
    )


anchor = anchor_app() if "ANCHOR_DIR" in os.environ else None


def run_server(
    directory: Path, app: str, work: Callable[[int, int], list[dict[str, float]]]
) -> list[dict[str, float]]:
    port = free_port()
    server = start_server(directory, port, app)
    pin_client()
    try:
        return work(port, server.pid)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small run for CI")
    args = parser.parse_args()
    count, solo = (48, 8) if args.quick else (320, 40)
    body = os.urandom(UPLOAD_BYTES)

    def ours(port: int, pid: int) -> list[dict[str, float]]:
        register = "mutation($input: DeviceRegisterInput!) { deviceRegister(input: $input) { accessToken } }"
        token = graphql(port, register, {"input": {"deviceKey": os.urandom(24).hex()}})["deviceRegister"]
        token = token["accessToken"]
        measure(port, pid, token, open_uploads(port, token, 16), 4, body)  # warm-up
        return [
            measure(port, pid, token, open_uploads(port, token, n), c, body)
            for n, c in ((solo, 1), (count, 16))
        ]

    def bare(port: int, pid: int) -> list[dict[str, float]]:
        names = [os.urandom(8).hex() for _ in range(16 + solo + count)]
        measure(port, pid, "-", names[:16], 4, body)
        return [
            measure(port, pid, "-", names[16 : 16 + solo], 1, body),
            measure(port, pid, "-", names[16 + solo :], 16, body),
        ]

    with tempfile.TemporaryDirectory(prefix="upload-bench-") as directory:
        rows = run_server(Path(directory), "server.main:app", ours)
        anchors = run_server(Path(directory), "bench.upload_intake:anchor", bare)
    print(
        f"4 MiB PATCH /uploads/{{id}} over uvicorn (1 worker, uvloop+httptools), {os.cpu_count()} CPUs; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    header = ("", "c", "uploads", "uploads/s", "CPU ms/upload", "of it kernel", "p50 ms", "extra RSS MiB")
    print("{:28} {:>3} {:>8} {:>10} {:>14} {:>13} {:>8} {:>14}".format(*header))
    for name, group in (("intake (auth, DB, lease)", rows), ("anchor: bare aiofiles route", anchors)):
        for row in group:
            print(
                f"{name:28} {row['concurrency']:>3} {row['uploads']:>8} {row['per_second']:>10.1f} "
                f"{row['cpu_ms']:>14.2f} {row['system_ms']:>13.2f} {row['p50_ms']:>8.1f} "
                f"{row['extra_rss_mib']:>14.1f}"
            )
    many, bare_many = rows[1], anchors[1]
    per_upload = many["extra_rss_mib"] / many["concurrency"]
    print()
    print(
        f"server CPU per upload at c=16: {many['cpu_ms']:.2f} ms (target <= {TARGET_CPU_MS}); "
        f"{many['cpu_ms'] / bare_many['cpu_ms']:.2f}x the bare route on this machine"
    )
    print(f"extra peak RSS per concurrent upload: {per_upload:.2f} MiB (target <= {TARGET_MIB_PER_UPLOAD})")
    print(
        f"uploads/s at c=16: {many['per_second']:.0f} (target >= {TARGET_PER_SECOND:.0f}); "
        f"bare route {bare_many['per_second']:.0f}"
    )


if __name__ == "__main__":
    main()
