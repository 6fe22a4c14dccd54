"""Benchmark the patrol API end to end, over HTTP against a real uvicorn (one worker).

    python bench/track_ingest.py                      # SQLite and PostgreSQL, full sizes
    python bench/track_ingest.py --db sqlite --quick  # a CI smoke run in seconds
    BENCH_POSTGRES_URL=postgres://... python bench/track_ingest.py --db postgres

Measures (issue targets):
- track ingest: points stored per second, batches of 100, 4 phones uploading at once (>= 10,000/s);
- finishing a 3-hour 1 Hz patrol (10,800 points) with all metrics, the patrolFinish round trip (<= 300 ms);
- compliance of a county: 500 chiefs x 20 patrols, one quarter, weekly rule (<= 500 ms), as the
  domain call (3 queries + evaluation) and as the GraphQL round trip with a summary selection.
The PostgreSQL database is wiped: BENCH_POSTGRES_URL, by default a local `bench` database (created if
missing).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import Tortoise  # noqa: E402

from bench.support.postgres import postgres_url, reset_postgres  # noqa: E402
from bench.support.runner import free_port, pin_client, pinned, stop  # noqa: E402
from identity.models import Role, User  # noqa: E402
from patrols import compliance  # noqa: E402
from patrols.access import Viewer  # noqa: E402
from patrols.models import ChiefAssignment, Patrol, PatrolArea, PatrolStatus  # noqa: E402
from server.db import apply_migrations, tortoise_config  # noqa: E402
from server.seed import load_demo_city, seed_demo  # noqa: E402

PG_URL = postgres_url()
PASSWORD = "demo-password-2026"
T0 = datetime.now(UTC) - timedelta(days=2)

SIGN_IN = "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }"
START = "mutation($i: PatrolStartInput!) { patrolStart(input: $i) { patrol { id } userErrors { message } } }"
APPEND = """mutation($i: PatrolTrackAppendInput!) { patrolTrackAppend(input: $i) {
  stored heldRanges { first last } userErrors { message } } }"""
FINISH = """mutation($i: PatrolFinishInput!) { patrolFinish(input: $i) {
  patrol { metrics { distanceM coverage validPointCount } authenticity { suspicious } }
  userErrors { message } } }"""
COMPLIANCE = """query($from: Date!, $to: Date!) { patrolCompliance(region: "9999", from: $from, to: $to) {
  chief { username } required done missing met } }"""


def river_points(n: int, seed: int) -> list[dict]:
    """A 1 Hz walk along demo river R-QH-01, with a varying pace."""
    coords = next(a for a in load_demo_city()["patrol_areas"] if a["code"] == "R-QH-01")["geometry"][
        "coordinates"
    ]
    rng = random.Random(seed)
    m_lat = 110_900.0
    m_lon = 111_320.0 * math.cos(math.radians(30.29))
    points, s = [], 0.0
    for i in range(n):
        remaining = s % 7500.0
        lon, lat = coords[-1]
        for a, b in zip(coords, coords[1:], strict=False):
            step = math.hypot((b[0] - a[0]) * m_lon, (b[1] - a[1]) * m_lat)
            if remaining <= step:
                f = remaining / step
                lon, lat = a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
                break
            remaining -= step
        t = T0 + timedelta(seconds=i)
        points.append({"seq": i, "t": t.isoformat(), "latitude": lat, "longitude": lon, "accuracy": 5.0})
        s += rng.uniform(1.2, 1.8)
    return points


class Api:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token

    async def call(self, query: str, variables: dict) -> dict:
        r = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise RuntimeError(r.text[:500])
        return body["data"]

    async def start(self, client_id: str, area_id: str) -> str:
        data = await self.call(
            START,
            {"i": {"clientId": client_id, "areaId": area_id, "mode": "FOOT", "startedAt": T0.isoformat()}},
        )
        return data["patrolStart"]["patrol"]["id"]

    async def upload(self, patrol_id: str, points: list[dict], batch: int = 100) -> int:
        """In the compact `rows` form a phone uses for catch-up uploads."""
        rows = [
            [
                p["seq"],
                int(datetime.fromisoformat(p["t"]).timestamp() * 1000),
                p["latitude"],
                p["longitude"],
                p["accuracy"],
                None,
                False,
            ]
            for p in points
        ]
        stored = 0
        for i in range(0, len(rows), batch):
            data = await self.call(APPEND, {"i": {"patrolId": patrol_id, "rows": rows[i : i + batch]}})
            assert not data["patrolTrackAppend"]["userErrors"], data
            stored += data["patrolTrackAppend"]["stored"]
        return stored


async def seed_county(chiefs: int, per_chief: int) -> None:
    """`chiefs` village river chiefs on one segment, each with `per_chief` finished patrols in Q2."""
    area = await PatrolArea.get(code="R-QH-01")
    users = [
        User(role=Role.CHIEF, username=f"bench.chief.{i}", display_name=f"bench {i}") for i in range(chiefs)
    ]
    await User.bulk_create(users)
    ids = await User.filter(username__startswith="bench.chief.").order_by("id").values_list("id", flat=True)
    await ChiefAssignment.bulk_create(
        [
            ChiefAssignment(
                chief_id=i, area_id=area.id, level="VILLAGE", kind="RIVER", valid_from=date(2026, 1, 1)
            )
            for i in ids
        ]
    )
    rng = random.Random(1)
    start = datetime(2026, 3, 31, 16, tzinfo=UTC)
    patrols = []
    for chief in ids:
        for k in range(per_chief):
            began = start + timedelta(hours=rng.uniform(0, 90 * 24))
            minutes = rng.uniform(5, 90)
            patrols.append(
                Patrol(
                    client_id=f"b{chief}-{k}",
                    fingerprint="-",
                    chief_id=chief,
                    counted_for_id=chief,
                    area_id=area.id,
                    mode="FOOT",
                    status=PatrolStatus.FINISHED,
                    started_at=began,
                    started_received_at=began,
                    finished_at=began + timedelta(minutes=minutes),
                    finished_received_at=began + timedelta(minutes=minutes),
                    duration_s=minutes * 60,
                    distance_m=rng.uniform(300, 6000),
                    coverage=rng.uniform(0.1, 1.0),
                    metrics_at=began,
                )
            )
    await Patrol.bulk_create(patrols, batch_size=1000)


def median_ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples):.1f} ms (min {min(samples):.1f}, n={len(samples)})"


async def run(db: str, quick: bool, batch: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-patrols-"))
    url = f"sqlite://{tmp / 'bench.sqlite3'}" if db == "sqlite" else PG_URL
    if db == "postgres":
        await reset_postgres(url)
    await apply_migrations(url)
    await Tortoise.init(config=tortoise_config(url))
    await seed_demo()
    chiefs, per_chief = (20, 5) if quick else (500, 20)
    await seed_county(chiefs, per_chief)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp),
        "REQUESTS_PER_MINUTE": "10000000",
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "warning",
        "SECRET_KEY": "bench-secret-key-0123456789-abcdefghij",
    }
    server = subprocess.Popen(  # noqa: ASYNC220 (starting the server is outside every measurement)
        [
            *pinned(),
            sys.executable,
            "-m",
            "uvicorn",
            "server.main:app",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    pin_client()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(200):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await report(client, db, quick, chiefs, per_chief, batch)
    finally:
        stop(server)
        await Tortoise.close_connections()


async def report(
    client: httpx.AsyncClient, db: str, quick: bool, chiefs: int, per_chief: int, batch: int
) -> None:
    token = (
        await client.post(
            "/graphql",
            json={"query": SIGN_IN, "variables": {"i": {"login": "chief.village", "password": PASSWORD}}},
        )
    ).json()["data"]["signIn"]["accessToken"]
    api = Api(client, token)
    area_id = (
        await client.post("/graphql", json={"query": "{ patrolAreas(first: 5) { nodes { id code } } }"})
    ).json()
    area_id = next(a["id"] for a in area_id["data"]["patrolAreas"]["nodes"] if a["code"] == "R-QH-01")

    phones, per_phone = (2, 1_000) if quick else (4, 10_800)
    tracks = [river_points(per_phone, seed) for seed in range(phones)]
    patrol_ids = [await api.start(f"ingest-{i}", area_id) for i in range(phones)]
    began = time.perf_counter()
    stored = sum(
        await asyncio.gather(*(api.upload(p, t, batch) for p, t in zip(patrol_ids, tracks, strict=True)))
    )
    elapsed = time.perf_counter() - began
    print(
        f"[{db}] track ingest: {stored} points in batches of {batch} by {phones} phones: "
        f"{stored / elapsed:,.0f} points/s (target >= 10,000)"
    )

    finish_ms = []
    for i, patrol_id in enumerate(patrol_ids):
        t = time.perf_counter()
        data = await api.call(FINISH, {"i": {"patrolId": patrol_id, "finishedAt": tracks[i][-1]["t"]}})
        finish_ms.append((time.perf_counter() - t) * 1000)
        metrics = data["patrolFinish"]["patrol"]["metrics"]
    print(
        f"[{db}] finish a {per_phone}-point patrol with all metrics (HTTP round trip): "
        f"{median_ms(finish_ms)} (target <= 300 ms); "
        f"last: {metrics['distanceM'] / 1000:.2f} km, coverage {metrics['coverage']:.2f}"
    )

    overseer = Viewer(None, True, ())
    domain_ms = []
    for _ in range(3 if quick else 5):
        t = time.perf_counter()
        verdicts = await compliance.compliance(overseer, date(2026, 4, 1), date(2026, 6, 30), region="9999")
        domain_ms.append((time.perf_counter() - t) * 1000)
    admin = (
        await client.post(
            "/graphql", json={"query": SIGN_IN, "variables": {"i": {"login": "admin", "password": PASSWORD}}}
        )
    ).json()["data"]["signIn"]["accessToken"]
    http_ms = []
    for _ in range(3 if quick else 5):
        t = time.perf_counter()
        body = await Api(client, admin).call(COMPLIANCE, {"from": "2026-04-01", "to": "2026-06-30"})
        http_ms.append((time.perf_counter() - t) * 1000)
    met = sum(v["met"] for v in body["patrolCompliance"])
    print(
        f"[{db}] county compliance, {chiefs} chiefs x {per_chief} patrols, one quarter: "
        f"domain {median_ms(domain_ms)}; GraphQL {median_ms(http_ms)} (target <= 500 ms); "
        f"{len(verdicts)} verdicts, {met} met"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--batch", type=int, default=100, help="points per upload (the API allows 1-1000)")
    args = parser.parse_args()
    if args.db == "both":
        # One process per database: Tortoise keeps per-process state from the first engine it served.
        for db in ("sqlite", "postgres"):
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--db", db], check=True)
        return
    asyncio.run(run(args.db, args.quick, args.batch))


if __name__ == "__main__":
    main()
