"""Benchmark: managers' case statistics for one month of 100,000 cases, over two sizes of history before
it, in one process, interleaved (issue 18: at most 200 ms on SQLite, and no growth with the history).

    python bench/case_statistics.py            # a month of 100,000 cases after 10,000 and 1,000,000 cases
    python bench/case_statistics.py --quick    # CI smoke run: 1,000 cases after 100 and 5,000
    python bench/case_statistics.py --history 10000 200000   # other sizes of history

Two databases per engine (SQLite: two files; PostgreSQL: BENCH_POSTGRES_URL, wiped, and the same name
with `_large`), each the demo city, then `--history` cases spread over the two years before March 2026,
then `--cases` cases in March 2026, the measured month; each case takes a plausible path (route, some
returns and re-routes, accept, start, resolve, some disputes and second resolutions, confirm or auto-close,
some ratings), its events bulk-inserted with their statistics columns as reports.casework writes them.
The roll-ups are then built by `reports.rollups.rebuild` (what `envcase rebuild-statistics` runs; its time
is reported) and the month's totals checked against counts kept while generating.

One task per database holds its own Tortoise context; they take turns, round by round, each running the
same calls: the anchor (raw SQL counting the month's route events through the covering index of
case_events: a fixed amount of engine work whatever the history, to tell the machine's load from the
code), the domain call by department and by department and category, the same by department as GraphQL
in process (httpx's ASGI transport: no socket, no server process) and the public `transparency` for
February to April. Reported per size: p50 and p99, CPU per call of this process (on SQLite that
includes the database's work in aiosqlite's thread; PostgreSQL's own CPU is not in it), each call's p50
over the anchor's, the large size's p50 over the small
one's (target: flat), and the load average.
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tortoise.backends.base.client import BaseDBAsyncClient  # noqa: E402
from tortoise.context import TortoiseContext  # noqa: E402
from tortoise.transactions import in_transaction  # noqa: E402

from bench.support.runner import bench_settings, each_database, fresh_database  # noqa: E402
from bench.support.seeding import bulk_insert  # noqa: E402
from bench.support.timing import percentile  # noqa: E402
from identity.models import Role, User  # noqa: E402
from kernel.rawsql import fetch  # noqa: E402
from reports import rollups  # noqa: E402
from reports.lifecycle import SAME_FIGURE, Action, Status  # noqa: E402
from reports.models import Category, Department  # noqa: E402
from reports.statistics import Dimension, StatisticsQuery, case_statistics  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import tortoise_config  # noqa: E402
from server.seed import load_demo_city, seed_demo  # noqa: E402

CITY = ZoneInfo("Asia/Shanghai")
MONTH = (date(2026, 3, 1), date(2026, 4, 1))  # the measured one
HISTORY_FROM = date(2024, 3, 1)  # the history before it: two years
STATISTICS = """query($input: CaseStatisticsInput!) { caseStatistics(input: $input) {
  total department { code } received accepted returned resolved closed reopened onTimeAcceptanceRate
  onTimeResolutionRate handlingHoursMedian handlingHoursP90 satisfactionRate overdueNow } }"""
TRANSPARENCY = """query($from: String!, $to: String!) { transparency(fromMonth: $from, toMonth: $to) {
  month department { id } received resolved resolvedOnTime ratingAverage satisfactionRate } }"""
SIGN_IN = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }"
HOUR = timedelta(hours=1)
CHUNK = 20_000  # cases generated and inserted at a time

CASE_COLUMNS = ("id", "reference", "category_id", "latitude", "longitude", "public_latitude",
    "public_longitude", "status", "version", "department_id", "priority", "response_due_at",
    "resolution_due_at", "reporter_count", "report_count", "routing_reason", "public", "summary",
    "dispatched_at", "status_changed_at", "resolved_at", "closed_at", "sla_pauses", "sla_extension",
    "resolution_note", "resolution_photo_ids", "rework_count", "last_reported_at", "created_at",
    "updated_at")  # fmt: skip
EVENT_COLUMNS = ("case_id", "kind", "department_id", "from_status", "to_status", "note", "data", "created_at",
    "category_id", "on_time", "handling_seconds", "prior_at", "prior_in_department_at")  # fmt: skip
FEEDBACK_COLUMNS = ("case_id", "reporter_id", "rating", "comment", "created_at", "updated_at")
JSON_COLUMNS = {"data", "sla_pauses", "resolution_photo_ids"}


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), CITY).astimezone(UTC)


MEASURED = (_local_midnight(MONTH[0]), _local_midnight(MONTH[1]))


@dataclass
class History:
    """A chunk of generated rows, and (over every chunk) the case ids the measured month's total row
    must count per event kind."""

    cases: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    feedback: list[tuple[Any, ...]] = field(default_factory=list)
    expected: dict[str, set[int]] = field(default_factory=dict)
    last: dict[tuple[Any, ...], datetime] = field(default_factory=dict)  # one case's, for its priors

    def event(self, case_id: int, kind: Action, department: int | None, category: int, to: Status,
              at: datetime, **data: Any) -> None:  # fmt: skip
        """The event as reports.casework writes it, with its statistics columns."""
        due, dispatched = data.get("due"), data.get("dispatched")
        on_time = None if due is None else at <= datetime.fromisoformat(due)
        handling = None if dispatched is None else (at - datetime.fromisoformat(dispatched)).total_seconds()
        row = (case_id, kind.value, department, None, to.value, "", json.dumps(data), at)
        figure = SAME_FIGURE.get(kind)
        anywhere, here = (case_id, figure), (case_id, figure, department)
        priors = (self.last.get(anywhere), self.last.get(here)) if figure else (None, None)
        if figure:
            self.last[anywhere] = self.last[here] = at
        self.events.append((*row, category, on_time, handling, *priors))
        if MEASURED[0] <= at < MEASURED[1]:
            self.expected.setdefault(kind.value, set()).add(case_id)

    def flush(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The chunk's rows (events in time order, as the log is appended), and an empty chunk."""
        rows = (self.cases, sorted(self.events, key=lambda e: e[7]), self.feedback)
        self.cases, self.events, self.feedback = [], [], []
        return rows


def routed_times(history_cases: int, month_cases: int, rng: random.Random) -> Iterator[datetime]:
    """When each case was routed, in time order (case ids rise with time, as residents submit them)."""
    for (first, last), count in (((HISTORY_FROM, MONTH[0]), history_cases), (MONTH, month_cases)):
        start, span = _local_midnight(first), _local_midnight(last) - _local_midnight(first)
        yield from sorted(start + span * rng.random() for _ in range(count))


def one_case(history: History, case_id: int, routed: datetime, rng: random.Random,
             departments: Sequence[int], categories: Sequence[int], rater: int) -> None:  # fmt: skip
    """One case's plausible path through the lifecycle: its events, its row, maybe a rating."""
    history.last.clear()
    department, category = rng.choice(departments), rng.choice(categories)
    response_due, resolution_due = routed + 24 * HOUR, routed + 120 * HOUR
    history.event(case_id, Action.ROUTE, department, category, Status.ROUTED, routed)
    now, status, resolved, closed, rework = routed, Status.ROUTED, None, None, 0
    if rng.random() < 0.05:  # returned, then re-routed by a dispatcher
        now += 2 * HOUR
        history.event(case_id, Action.RETURN, department, category, Status.RETURNED, now,
                      due=response_due.isoformat())  # fmt: skip
        department = rng.choice([d for d in departments if d != department])
        now += 2 * HOUR
        response_due = now + 24 * HOUR
        history.event(case_id, Action.REROUTE, department, category, Status.ROUTED, now)
    dispatched = routed
    if rng.random() < 0.97:  # the rest still wait for an answer
        now += HOUR * rng.expovariate(1 / 12)
        history.event(case_id, Action.ACCEPT, department, category, Status.ACCEPTED, now,
                      due=response_due.isoformat())  # fmt: skip
        now += HOUR
        history.event(case_id, Action.START, department, category, Status.IN_PROGRESS, now)
        status = Status.IN_PROGRESS
        for attempt in range(2):
            if rng.random() < 0.1:
                break  # still being worked on
            now += HOUR * rng.expovariate(1 / 72)
            clocks = {"due": resolution_due.isoformat(), "dispatched": dispatched.isoformat()}
            history.event(case_id, Action.RESOLVE, department, category, Status.RESOLVED, now, **clocks)
            status, resolved = Status.RESOLVED, now
            if attempt == 0 and rng.random() < 0.05:  # disputed: rework from the dispute
                now += 24 * HOUR
                history.event(case_id, Action.DISPUTE, department, category, Status.REOPENED, now)
                dispatched, resolution_due, status, rework = now, now + 120 * HOUR, Status.REOPENED, 1
                continue
            kind = Action.CONFIRM if rng.random() < 0.85 else Action.AUTO_CLOSE
            now += 24 * HOUR if kind is Action.CONFIRM else 7 * 24 * HOUR
            history.event(case_id, kind, department, category, Status.CLOSED, now)
            status, closed = Status.CLOSED, now
            if rng.random() < 0.4:
                history.feedback.append((case_id, rater, rng.randint(1, 5), "", now, now))
            break
    history.cases.append(
        (case_id, f"B-{case_id:07d}", category, 30.2, 120.1, 30.2, 120.1, status.value, 2,
         department, 2, response_due, resolution_due, 1, 1, "bench", True, "bench", dispatched,
         now, resolved, closed, "[]", 0.0, "", "[]", rework, routed, routed, now)
    )  # fmt: skip


async def seed(url: str, history_cases: int, month_cases: int) -> dict[str, Any]:
    """A fresh database with the demo city and the generated cases, roll-ups built and totals checked."""
    await fresh_database(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await seed_demo()
        departments = [row_id for (row_id,) in await Department.all().order_by("id").values_list("id")]
        categories = [row_id for (row_id,) in await Category.all().order_by("id").values_list("id")]
        rater = (await User.create(role=Role.CITIZEN)).id
        began = time.perf_counter()
        rng = random.Random(5)
        history, events = History(), 0
        times = routed_times(history_cases, month_cases, rng)
        for case_id, routed in enumerate(times, start=1):
            one_case(history, case_id, routed, rng, departments, categories, rater)
            if case_id % CHUNK == 0 or case_id == history_cases + month_cases:
                cases, logged, feedback = history.flush()
                events += len(logged)
                async with in_transaction() as conn:
                    for table, columns, rows in (("cases", CASE_COLUMNS, cases),
                                                 ("case_events", EVENT_COLUMNS, logged),
                                                 ("case_feedback", FEEDBACK_COLUMNS, feedback)):  # fmt: skip
                        await bulk_insert(conn, table, columns, rows, JSON_COLUMNS)
        seeded_s = time.perf_counter() - began
        began = time.perf_counter()
        await rollups.rebuild()
        rebuilt_s = time.perf_counter() - began
        # Fresh statistics for the planners; on PostgreSQL also the visibility map, as autovacuum would
        # have set it for a month-old history (so the covering index is read without the table), and a
        # checkpoint, so the server's background writes of the load stay out of the timings.
        settle = ["VACUUM ANALYZE", "CHECKPOINT"] if url.startswith("postgres") else ["ANALYZE"]
        for statement in settle:  # one at a time: VACUUM refuses to run inside a transaction block
            await Department._meta.db.execute_script(statement)

        dispatcher = await User.get(username="dispatcher")
        total = (await case_statistics(dispatcher, StatisticsQuery(start=MONTH[0], end=MONTH[1])))[-1]
        for name, kinds in (("received", ("route", "reroute")), ("accepted", ("accept",)),
                            ("resolved", ("resolve",)), ("closed", ("confirm", "auto_close"))):  # fmt: skip
            count = len(set().union(*(history.expected.get(k, set()) for k in kinds)))
            assert getattr(total, name) == count, (name, getattr(total, name), count)
    return {"events": events, "seeded_s": seeded_s, "rebuild_s": rebuilt_s}


def larger(url: str) -> str:
    """The second database of the same engine: another file, or the same name with `_large`."""
    if url.startswith("postgres"):
        return f"{url}_large"
    return url.removesuffix(".sqlite3") + "-large.sqlite3"


Call = Callable[[], Awaitable[Any]]


async def calls(client: httpx.AsyncClient, conn: BaseDBAsyncClient) -> dict[str, Call]:
    """The calls each round makes, by name, on one database (the anchor first)."""
    dispatcher = await User.get(username="dispatcher")
    by_department = StatisticsQuery(MONTH[0], MONTH[1])
    both = StatisticsQuery(MONTH[0], MONTH[1], group_by=frozenset(Dimension))
    login = {"login": "dispatcher", "password": load_demo_city()["password"]}
    response = await client.post("/graphql", json={"query": SIGN_IN, "variables": {"input": login}})
    headers = {"Authorization": f"Bearer {response.json()['data']['signIn']['accessToken']}"}
    month = {"from": MONTH[0].isoformat(), "to": MONTH[1].isoformat()}

    async def anchor() -> None:
        sql = "SELECT COUNT(*) FROM case_events WHERE kind = {} AND created_at >= {} AND created_at < {}"
        await fetch(conn, sql, ["route", *MEASURED])

    async def post(query: str, variables: dict[str, Any]) -> None:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert "errors" not in response.json(), response.text

    return {
        "anchor_raw_sql": anchor,
        "domain_by_department": lambda: case_statistics(dispatcher, by_department),
        "domain_by_department_and_category": lambda: case_statistics(dispatcher, both),
        "http_by_department": lambda: post(STATISTICS, {"input": month}),
        "http_transparency_3_months": lambda: post(TRANSPARENCY, {"from": "2026-02", "to": "2026-04"}),
    }


Turn = tuple[dict[str, float], dict[str, float]]  # milliseconds and CPU milliseconds, per call name


async def serve(url: str, media: Path, asks: asyncio.Queue[bool], answers: asyncio.Queue[Turn]) -> None:
    """One database's turn-taker: each time it is asked, every call once, timed."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        app = create_app(bench_settings(url, media), init_db=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            named = await calls(client, Department._meta.db)
            while await asks.get():
                wall, cpu = {}, {}
                for name, call in named.items():
                    began, began_cpu = time.perf_counter(), time.process_time()
                    await call()
                    wall[name] = (time.perf_counter() - began) * 1000
                    cpu[name] = (time.process_time() - began_cpu) * 1000
                await answers.put((wall, cpu))


async def measure(
    url: str, month_cases: int, histories: Sequence[int], rounds: int, media: Path
) -> dict[str, Any]:
    small, large = histories
    sizes = {small: url, large: larger(url)}
    figures: dict[str, Any] = {"month_cases": month_cases}
    for count, database in sizes.items():
        figures[f"{count}_seeded"] = await seed(database, count, month_cases)
    queues = {count: (asyncio.Queue[bool](), asyncio.Queue[Turn]()) for count in sizes}
    tasks = [asyncio.create_task(serve(sizes[c], media, *queues[c])) for c in sizes]
    turns: dict[int, list[Turn]] = {count: [] for count in sizes}
    for number in range(rounds + 1):  # the first round warms both up and is not counted
        order = list(sizes) if number % 2 else list(sizes)[::-1]  # alternate who goes first
        for count in order:
            asks, answers = queues[count]
            await asks.put(True)
            turn = await answers.get()
            if number:
                turns[count].append(turn)
    for asks, _ in queues.values():
        await asks.put(False)
    await asyncio.gather(*tasks)
    figures["load_average"] = os.getloadavg()
    for count, taken in turns.items():
        for name in taken[0][0]:
            wall = [t[0][name] for t in taken]
            figures[f"{count}:{name}"] = {
                "p50": statistics.median(wall),
                "p99": percentile(wall, 0.99),
                "cpu": statistics.median(t[1][name] for t in taken),
                "over_anchor": statistics.median(t[0][name] / t[0]["anchor_raw_sql"] for t in taken),
            }
    for name in turns[small][0][0]:
        figures[f"ratio:{name}"] = figures[f"{large}:{name}"]["p50"] / figures[f"{small}:{name}"]["p50"]
    return figures


def run_one(url: str, month_cases: int, histories: Sequence[int], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(measure(url, month_cases, histories, rounds, Path(tmp) / "media"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,000 cases after 100 and 5,000: proves it works"
    )
    parser.add_argument(
        "--cases", type=int, default=None, help="cases in the measured month (default 100,000)"
    )
    parser.add_argument("--history", type=int, nargs=2, default=None, help="the two sizes of history")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one engine per process
    args = parser.parse_args()
    month_cases = args.cases or (1_000 if args.quick else 100_000)
    histories = args.history or ([100, 5_000] if args.quick else [10_000, 1_000_000])
    rounds = args.rounds or (3 if args.quick else 10)
    if args.only:
        print(json.dumps(run_one(args.only, month_cases, histories, rounds)))
        return
    print(f"a month of {month_cases:,} cases after {histories[0]:,} and {histories[1]:,} cases of history, "
          f"interleaved, {rounds} rounds; target <= 200 ms and flat")  # fmt: skip
    given = ["--cases", str(month_cases), "--rounds", str(rounds), "--history", *map(str, histories)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, figures in each_database(__file__, given, tmp):
            load = ", ".join(f"{v:.1f}" for v in figures["load_average"])
            print(f"{name} (load average {load})")
            for size in histories:
                seeded = figures[f"{size}_seeded"]
                events, seeded_s, rebuild_s = seeded["events"], seeded["seeded_s"], seeded["rebuild_s"]
                print(f"  history {size:>9,}: {events:,} events seeded in {seeded_s:.0f} s,"
                      f" roll-ups rebuilt in {rebuild_s:.1f} s")  # fmt: skip
                for key, times in figures.items():
                    if key.startswith(f"{size}:"):
                        label = key.split(":", 1)[1]
                        p50, p99, cpu, over = (times[k] for k in ("p50", "p99", "cpu", "over_anchor"))
                        print(f"    {label:34s} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
                              f"CPU {cpu:6.1f} ms  x anchor {over:6.2f}")  # fmt: skip
            for key, ratio in figures.items():
                if key.startswith("ratio:"):
                    print(f"  {key.split(':', 1)[1]:36s} large/small p50 {ratio:5.2f}")


if __name__ == "__main__":
    main()
