"""Benchmark: the chief office's figures for one region (a city of the province) and one quarter.

    python bench/office_figures.py            # SQLite, then PostgreSQL (BENCH_POSTGRES_URL) if reachable
    python bench/office_figures.py --quick    # a CI smoke run (seconds)

The province (full size, as issue 17 asks): 10,000 river segments in 10 cities of 10 counties each,
20,000 chiefs (a village chief and a township chief per segment), one year (2026) of patrols (village
chiefs about twice a month, township chiefs about monthly, a tenth of them skipped), 200,000
observations on them, 30 % handed off as cases (most closed, most of those on time), and 20,000
residents' cases in the segments. Seeded with bulk raw INSERTs.

Measured: `patrols.office.office_figures` for one city (1,000 segments, 2,000 chiefs) and 2026-Q2,
grouped by area and by level, as the river chief office; against the anchor, the raw SQL of the same
counts (patrols done per chief, problems per chief and area, complaints per area) without the rules'
evaluation or the grouping; and the patrol rules alone, counted (`patrol_counts`, what the figures
use) and explained per patrol (`compliance`, what `patrolCompliance` answers). All taking turns in
each round, with the process's CPU per call and the load average; the process runs on CPU 1 where
it can be pinned. Before timing, the problem counts are checked against counts kept while
generating, and the counted patrols against the explained ones. Target (issue): at most 500 ms on
PostgreSQL. PostgreSQL: the database at BENCH_POSTGRES_URL is wiped (default: a local `bench`
database, created if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import connections  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402
from tortoise.transactions import in_transaction  # noqa: E402

from bench.support.runner import each_database, fresh_database, pin_measured  # noqa: E402
from bench.support.seeding import bulk_insert  # noqa: E402
from identity.models import Role, User  # noqa: E402
from kernel.rawsql import fetch  # noqa: E402
from patrols.access import Viewer  # noqa: E402
from patrols.compliance import assignments_in, compliance, patrol_counts, upsert_rules  # noqa: E402
from patrols.office import OfficeDimension, office_figures  # noqa: E402
from reports.models import Category, Department  # noqa: E402
from server.db import tortoise_config  # noqa: E402

CITY_TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2026
QUARTER = "2026-Q2"
Q2 = (
    datetime(2026, 4, 1, tzinfo=CITY_TZ).astimezone(UTC),
    datetime(2026, 7, 1, tzinfo=CITY_TZ).astimezone(UTC),
)
TARGET_MS = 500.0
RULES = [
    {
        "code": "BENCH-VILLAGE",
        "region_code": "990000",
        "chief_level": "VILLAGE",
        "chief_kind": "RIVER",
        "period": "MONTH",
        "min_count": 2,
        "min_duration_min": 10,
        "min_distance_km": 1,
        "source": "bench: village chiefs twice a month",
    },
    {
        "code": "BENCH-TOWNSHIP",
        "region_code": "990000",
        "chief_level": "TOWNSHIP",
        "chief_kind": "RIVER",
        "period": "QUARTER",
        "min_count": 3,
        "min_duration_min": 10,
        "source": "bench: township chiefs monthly",
    },
]

AREA_COLUMNS = (
    "id",
    "code",
    "name",
    "kind",
    "admin_region",
    "geometry",
    "length_m",
    "area_m2",
    "min_lat",
    "min_lon",
    "max_lat",
    "max_lon",
    "created_at",
)
USER_COLUMNS = ("id", "role", "username", "display_name", "is_active", "created_at")
ASSIGNMENT_COLUMNS = ("chief_id", "area_id", "level", "kind", "valid_from", "created_at")
PATROL_COLUMNS = (
    "id",
    "client_id",
    "fingerprint",
    "chief_id",
    "counted_for_id",
    "area_id",
    "mode",
    "status",
    "started_at",
    "started_received_at",
    "finished_at",
    "finished_received_at",
    "pauses",
    "held_ranges",
    "point_count",
    "duration_s",
    "distance_m",
    "coverage",
    "authenticity_flags",
    "authenticity_reasons",
    "late_upload",
    "by_volunteer",
    "created_at",
)
OBSERVATION_COLUMNS = (
    "client_id",
    "fingerprint",
    "patrol_id",
    "category",
    "note",
    "lat",
    "lon",
    "observed_at",
    "photo_ids",
    "case_id",
    "case_reference",
    "escalated_at",
    "after_photo_ids",
    "handling_note",
    "created_at",
)
CASE_COLUMNS = (
    "id",
    "reference",
    "category_id",
    "latitude",
    "longitude",
    "public_latitude",
    "public_longitude",
    "status",
    "version",
    "department_id",
    "priority",
    "response_due_at",
    "resolution_due_at",
    "reporter_count",
    "report_count",
    "routing_reason",
    "public",
    "summary",
    "resolved_at",
    "closed_at",
    "sla_pauses",
    "sla_extension",
    "resolution_note",
    "resolution_photo_ids",
    "rework_count",
    "last_reported_at",
    "created_at",
    "updated_at",
)
REPORT_COLUMNS = (
    "reporter_id",
    "client_id",
    "fingerprint",
    "category_id",
    "case_id",
    "description",
    "latitude",
    "longitude",
    "original_latitude",
    "original_longitude",
    "crs",
    "observed_at",
    "evidence",
    "photo_ids",
    "anonymous",
    "contact_consent",
    "source",
    "origin",
    "created_at",
)
JSON_COLUMNS = {
    "geometry",
    "pauses",
    "held_ranges",
    "authenticity_flags",
    "authenticity_reasons",
    "photo_ids",
    "after_photo_ids",
    "sla_pauses",
    "resolution_photo_ids",
    "evidence",
    "origin",
}


@dataclass(frozen=True)
class Sizes:
    cities: int
    counties: int  # per city
    areas_per_county: int
    observations: int
    complaints: int
    rounds: int


FULL = Sizes(cities=10, counties=10, areas_per_county=100, observations=200_000, complaints=20_000, rounds=9)
QUICK = Sizes(cities=2, counties=2, areas_per_county=10, observations=2_000, complaints=200, rounds=3)


@dataclass
class History:
    areas: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[tuple[Any, ...]] = field(default_factory=list)
    assignments: list[tuple[Any, ...]] = field(default_factory=list)
    patrols: list[tuple[Any, ...]] = field(default_factory=list)
    observations: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    # What the measured city's Q2 figures must say.
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("found", "handed", "closed"), 0))


def region_of(city: int, county: int) -> str:
    return f"99{city + 1:02d}{county + 1:02d}"


def measured_region() -> str:
    return "9901"


def generate(sizes: Sizes, category_id: int, department_id: int, resident_id: int) -> History:
    rng = random.Random(17)
    h = History()
    created = datetime(2025, 12, 1, tzinfo=UTC)
    bbox: dict[int, tuple[float, float, float, float]] = {}
    region: dict[int, str] = {}
    area_id = 0
    for city in range(sizes.cities):
        for county in range(sizes.counties):
            for i in range(sizes.areas_per_county):
                area_id += 1
                lat = 30.0 + city * 0.5 + county * 0.04 + (i // 10) * 0.004
                lon = 110.0 + (i % 10) * 0.004 + county * 0.05
                line = {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.003, lat + 0.002]]}
                h.areas.append(
                    (
                        area_id,
                        f"B-{area_id:05d}",
                        f"segment {area_id}",
                        "RIVER_SEGMENT",
                        region_of(city, county),
                        json.dumps(line),
                        400.0,
                        0.0,
                        lat,
                        lon,
                        lat + 0.002,
                        lon + 0.003,
                        created,
                    )
                )
                bbox[area_id] = (lat, lon, lat + 0.002, lon + 0.003)
                region[area_id] = region_of(city, county)
    # Two chiefs per area: the village chief (user id 2 × area) and the township chief (2 × area + 1).
    for a in range(1, area_id + 1):
        for chief, level in ((2 * a, "VILLAGE"), (2 * a + 1, "TOWNSHIP")):
            h.users.append((chief, "CHIEF", f"chief-{chief}", f"chief {chief}", True, created))
            h.assignments.append((chief, a, level, "RIVER", date(2026, 1, 1), created))
    patrol_id = 0
    patrol_area: list[int] = []
    patrol_start: list[datetime] = []
    for a in range(1, area_id + 1):
        for chief, per_month in ((2 * a, 2), (2 * a + 1, 1)):
            for month in range(1, 13):
                for _ in range(per_month):
                    if rng.random() < 0.1:
                        continue  # a missed patrol
                    patrol_id += 1
                    day = rng.randint(1, 28)
                    started = datetime(YEAR, month, day, rng.randint(7, 17), tzinfo=CITY_TZ).astimezone(UTC)
                    finished = started + timedelta(minutes=30)
                    h.patrols.append(
                        (
                            patrol_id,
                            f"p{patrol_id}",
                            "bench",
                            chief,
                            chief,
                            a,
                            "FOOT",
                            "FINISHED",
                            started,
                            started,
                            finished,
                            finished,
                            "[]",
                            "[]",
                            0,
                            1800.0,
                            rng.choice((800.0, 2000.0, 2500.0)),
                            0.8,
                            "[]",
                            "[]",
                            False,
                            False,
                            started,
                        )
                    )
                    patrol_area.append(a)
                    patrol_start.append(started)
    case_id = 0
    measured = measured_region()
    for n in range(sizes.observations):
        index = rng.randrange(patrol_id)
        a, started = patrol_area[index], patrol_start[index]
        lat, lon = bbox[a][0] + 0.001, bbox[a][1] + 0.001
        seen = started + timedelta(minutes=10)
        counted = region[a].startswith(measured) and Q2[0] <= started < Q2[1]
        handed_case, reference, escalated = None, None, None
        if rng.random() < 0.3:
            case_id += 1
            handed_case, reference, escalated = case_id, f"BO-{case_id:07d}", seen
            closed = rng.random() < 0.7
            due = seen + timedelta(days=7)
            resolved = seen + timedelta(days=rng.choice((2, 5, 10))) if closed else None
            h.cases.append(
                _case(
                    case_id,
                    reference,
                    category_id,
                    department_id,
                    lat,
                    lon,
                    "CLOSED" if closed else "IN_PROGRESS",
                    due,
                    resolved,
                    seen,
                )
            )
            if counted:
                h.expected["handed"] += 1
                h.expected["closed"] += closed
        h.observations.append(
            (
                f"o{n}",
                "bench",
                index + 1,
                "FLOATING_RUBBISH",
                "",
                lat,
                lon,
                seen,
                "[]",
                handed_case,
                reference,
                escalated,
                "[]",
                "",
                seen,
            )
        )
        if counted:
            h.expected["found"] += 1
    for n in range(sizes.complaints):
        a = rng.randint(1, area_id)
        case_id += 1
        when = datetime(YEAR, rng.randint(1, 12), rng.randint(1, 28), 12, tzinfo=CITY_TZ).astimezone(UTC)
        lat, lon = bbox[a][0] + 0.0015, bbox[a][1] + 0.002
        h.cases.append(
            _case(
                case_id,
                f"BR-{case_id:07d}",
                category_id,
                department_id,
                lat,
                lon,
                "ROUTED",
                when + timedelta(days=5),
                None,
                when,
            )
        )
        h.reports.append(
            (
                resident_id,
                f"r{n}",
                "bench",
                category_id,
                case_id,
                "bench",
                lat,
                lon,
                lat,
                lon,
                "WGS84",
                when,
                "{}",
                "[]",
                False,
                False,
                "RESIDENT",
                "{}",
                when,
            )
        )
    return h


def _case(
    case_id: int,
    reference: str,
    category_id: int,
    department_id: int,
    lat: float,
    lon: float,
    status: str,
    due: datetime,
    resolved: datetime | None,
    created: datetime,
) -> tuple[Any, ...]:
    closed = resolved + timedelta(days=1) if resolved else None
    return (
        case_id,
        reference,
        category_id,
        lat,
        lon,
        lat,
        lon,
        status,
        1,
        department_id,
        2,
        due,
        due,
        1,
        1,
        "bench",
        True,
        "bench",
        resolved,
        closed,
        "[]",
        0.0,
        "",
        "[]",
        0,
        created,
        created,
        created,
    )


async def anchor(region: str) -> int:
    """The same counts in raw SQL, without evaluating the rules, matching complaints to areas or
    grouping: the floor to compare with."""
    conn = connections.get("default")
    like = f"{region}%"
    patrols = await fetch(
        conn,
        "SELECT p.counted_for_id, COUNT(*) FROM patrols p JOIN patrol_areas a ON a.id = p.area_id "
        "WHERE p.status = 'FINISHED' AND p.started_at >= {} AND p.started_at < {} AND a.admin_region LIKE {} "
        "GROUP BY p.counted_for_id",
        [Q2[0], Q2[1], like],
    )
    problems = await fetch(
        conn,
        "SELECT p.counted_for_id, p.area_id, COUNT(o.id), COUNT(o.case_id), "
        "SUM(CASE WHEN c.status = 'CLOSED' THEN 1 ELSE 0 END), SUM(CASE WHEN c.status = 'CLOSED' AND "
        "(c.resolution_due_at IS NULL OR c.resolved_at <= c.resolution_due_at) THEN 1 ELSE 0 END) "
        "FROM patrols p JOIN patrol_areas a ON a.id = p.area_id "
        "JOIN patrol_observations o ON o.patrol_id = p.id "
        "LEFT JOIN cases c ON c.id = o.case_id WHERE p.started_at >= {} AND p.started_at < {} "
        "AND a.admin_region LIKE {} GROUP BY p.counted_for_id, p.area_id",
        [Q2[0], Q2[1], like],
    )
    [box] = await fetch(
        conn,
        "SELECT MIN(min_lat) - 0.001, MAX(max_lat) + 0.001, MIN(min_lon) - 0.001, MAX(max_lon) + 0.001 "
        "FROM patrol_areas WHERE admin_region LIKE {}",
        [like],
    )
    complaints = await fetch(
        conn,
        "SELECT c.latitude, c.longitude, COUNT(*) FROM cases c WHERE c.created_at >= {} "
        "AND c.created_at < {} AND c.status NOT IN ('MERGED', 'REJECTED') AND c.latitude BETWEEN {} AND {} "
        "AND c.longitude BETWEEN {} AND {} AND EXISTS (SELECT 1 FROM reports r WHERE r.case_id = c.id "
        "AND r.source = 'RESIDENT') GROUP BY c.latitude, c.longitude",
        [Q2[0], Q2[1], *box],
    )
    return len(patrols) + len(problems) + len(complaints)


async def interleaved(
    calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int
) -> dict[str, dict[str, float]]:
    """Each call once per round, in turn (the order rotating), after one warming round (caches, query
    plans): p50 and max wall time, and the CPU this process spent per call (the database's own CPU is
    not in it: PostgreSQL's is another process, SQLite's runs in this one)."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    for number in range(rounds + 1):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            wall, began = time.perf_counter(), time.process_time()
            await calls[name]()
            if number:
                cpu[name] += time.process_time() - began
                times[name].append((time.perf_counter() - wall) * 1000)
    return {
        name: {"p50": statistics.median(got), "max": max(got), "cpu": cpu[name] * 1000 / len(got)}
        for name, got in times.items()
    }


async def measure(url: str, sizes: Sizes) -> dict[str, Any]:
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        category = await Category.create(
            code="water.floating_rubbish", group="WATER", name_zh="河面漂浮物", name_en="Floating rubbish"
        )
        department = await Department.create(code="river-office", name="河长办", kind="river_chief_office")
        resident = await User.create(role=Role.CITIZEN, username="resident")
        await upsert_rules(RULES)
        began = time.perf_counter()
        h = generate(sizes, category.id, department.id, resident.id)
        offset = resident.id  # chiefs' ids above every account made so far
        users = [(uid + offset, *rest) for uid, *rest in h.users]
        assignments = [(chief + offset, *rest) for chief, *rest in h.assignments]
        patrols = [(p[0], p[1], p[2], p[3] + offset, p[4] + offset, *p[5:]) for p in h.patrols]
        async with in_transaction() as conn:
            await bulk_insert(conn, "patrol_areas", AREA_COLUMNS, h.areas, JSON_COLUMNS)
            await bulk_insert(conn, "users", USER_COLUMNS, users, JSON_COLUMNS)
            await bulk_insert(conn, "chief_assignments", ASSIGNMENT_COLUMNS, assignments, JSON_COLUMNS)
            await bulk_insert(conn, "patrols", PATROL_COLUMNS, patrols, JSON_COLUMNS)
            await bulk_insert(conn, "cases", CASE_COLUMNS, h.cases, JSON_COLUMNS)
            await bulk_insert(conn, "patrol_observations", OBSERVATION_COLUMNS, h.observations, JSON_COLUMNS)
            await bulk_insert(conn, "reports", REPORT_COLUMNS, h.reports, JSON_COLUMNS)
        settle = ["VACUUM ANALYZE", "CHECKPOINT"] if url.startswith("postgres") else ["ANALYZE"]
        for statement in settle:
            await connections.get("default").execute_script(statement)
        seeded_s = time.perf_counter() - began

        office = Viewer(user_id=None, overseer=True, commands=())
        region = measured_region()
        report = await office_figures(office, QUARTER, region=region)
        total = report.total.figures
        got = {"found": total.problems_found, "handed": total.handed_off, "closed": total.closed}
        assert got == h.expected, (got, h.expected)
        assert 0 < total.patrols_done <= total.patrols_required, total
        levels = frozenset({OfficeDimension.LEVEL})
        figures: dict[str, Any] = {
            "seeded_s": seeded_s,
            "patrols": len(h.patrols),
            "observations": len(h.observations),
            "region_areas": total.areas,
            "region_patrol_rate": total.patrol_rate,
            "region_score": report.total.assessment.score,
        }
        # The counting path the figures use against the explaining one (patrolCompliance), on the
        # same chiefs: the same required and done, or the figures would drift from the verdicts.
        first, last = report.window.first_day, report.window.last_day
        loaded = await assignments_in(first, last, region)
        counted = await patrol_counts(office, first, last, region=region, loaded=loaded)
        explained = await compliance(office, first, last, region=region, loaded=loaded)
        assert sum(a.required for c in counted for a in c.areas) == sum(v.verdict.required for v in explained)
        assert sum(a.done for c in counted for a in c.areas) == sum(v.verdict.done for v in explained)
        figures["load_before"] = os.getloadavg()[0]
        figures.update(
            await interleaved(
                {
                    "anchor: raw SQL": lambda: anchor(region),
                    "by area": lambda: office_figures(office, QUARTER, region=region),
                    "by level": lambda: office_figures(office, QUARTER, region=region, group_by=levels),
                    "rules counted": lambda: patrol_counts(office, first, last, region=region, loaded=loaded),
                    "rules explained": lambda: compliance(office, first, last, region=region, loaded=loaded),
                },
                sizes.rounds,
            )
        )
        figures["load_after"] = os.getloadavg()[0]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tiny province: proves it works")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one database per process
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.only:
        pin_measured()
        print(json.dumps(asyncio.run(measure(args.only, sizes))))
        return
    areas = sizes.cities * sizes.counties * sizes.areas_per_county
    print(
        f"{areas} areas, {2 * areas} chiefs, {sizes.observations} observations, "
        f"{sizes.complaints} complaints; region {measured_region()}, {QUARTER}; target <= {TARGET_MS:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        given = ["--quick"] if args.quick else []
        for name, figures in each_database(__file__, given, tmp):
            print(
                f"{name}: {figures['patrols']} patrols, {figures['observations']} observations seeded in "
                f"{figures['seeded_s']:.1f} s; the region: {figures['region_areas']} areas, patrol rate "
                f"{figures['region_patrol_rate']:.3f}, score {figures['region_score']}"
            )
            print(f"  load average {figures['load_before']:.1f} before, {figures['load_after']:.1f} after")
            anchor_p50 = figures["anchor: raw SQL"]["p50"]
            for label, times in figures.items():
                if not isinstance(times, dict):
                    continue
                verdict = f"  {times['p50'] / anchor_p50:.2f}× the anchor"
                if label.startswith("by "):
                    verdict += "  " + ("ok" if times["p50"] <= TARGET_MS else "OVER TARGET")
                print(
                    f"  {label:16s} p50 {times['p50']:7.1f} ms  max {times['max']:7.1f} ms  "
                    f"CPU {times['cpu']:6.1f} ms/call{verdict}"
                )


if __name__ == "__main__":
    main()
