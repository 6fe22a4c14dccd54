"""The statistics' per-day roll-ups (reports.rollups) against the case event log they summarize: after a
varied history made over HTTP (returns and re-routes, a category correction, a dispute and a second
resolution, an approved extension, a system close, events either side of local midnight), the figures
`caseStatistics` answers from the roll-ups equal the ones counted event by event from the log, for
periods and groupings of every shape; and rebuilding the roll-ups from the log gives the rows the
writes kept."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64 as relay_id

from reports import rollups
from reports.lifecycle import CASE_COUNTS
from reports.models import CaseDayFigures, CaseEvent, Category, Department
from tests.conftest import DATABASE_URL
from tests.graphql_client import gql_data
from tests.reports.helpers import resident
from tests.reports.test_statistics import SHANGHAI, STATISTICS, City, at, month, settings

__all__ = ["month", "settings"]  # the seeded March and its settings, shared with test_statistics

pytestmark = pytest.mark.usefixtures("demo")

FIGURE_OF_KIND = {kind.value: name for name, kinds in CASE_COUNTS for kind in kinds}
TIMED = {"accepted": "responses", "returned": "responses", "resolved": "resolutions"}
RATES = {"responses": "onTimeAcceptanceRate", "resolutions": "onTimeResolutionRate"}
COUNTS = ("received", "accepted", "returned", "resolved", "closed", "reopened", "responses", "resolutions")
EXTENSION_REQUEST = """mutation($input: CaseExtensionRequestInput!) { caseExtensionRequest(input: $input) {
  extension { id } userErrors { code message } } }"""
EXTENSION_DECIDE = """mutation($input: CaseExtensionDecideInput!) { caseExtensionDecide(input: $input) {
  userErrors { code message } } }"""
CATEGORY_CHANGE = """mutation($input: CaseCategoryChangeInput!) { caseCategoryChange(input: $input) {
  userErrors { code message } } }"""


def _local_day(moment: Any) -> date:
    return moment.astimezone(SHANGHAI).date()


def counted_from_log(
    events: list[CaseEvent], start: date, end: date, group_by: set[str], department: int | None = None
) -> dict[tuple[int | None, int | None] | None, dict[str, Any]]:
    """The figures of the days [start, end) counted event by event from the log, with the definitions
    of docs/statistics.md: a case counts in a row at its first event of the figure there in the
    period (by department where rows or the filter are per department), once in the total."""
    per_department = "DEPARTMENT" in group_by or department is not None
    rows: dict[tuple[int | None, int | None] | None, Counter[str]] = {None: Counter()}  # the total
    for e in events:
        figure = FIGURE_OF_KIND.get(e.kind)
        if figure is None or not start <= _local_day(e.created_at) < end:
            continue
        if department is not None and e.department_id != department:
            continue
        key = (
            e.department_id if "DEPARTMENT" in group_by else None,
            e.category_id if "CATEGORY" in group_by else None,
        )
        row_prior = e.prior_in_department_at if per_department else e.prior_at
        total_prior = e.prior_in_department_at if department is not None else e.prior_at
        for found, prior in ((key, row_prior), (None, total_prior)):
            counted = rows.setdefault(found, Counter())
            counted[figure] += prior is None or _local_day(prior) < start
            if figure in TIMED and e.on_time is not None:
                counted[TIMED[figure]] += 1
                counted[f"{TIMED[figure]}_on_time"] += int(e.on_time)
    return {key: _with_rates(counted) for key, counted in rows.items()}


def _with_rates(counted: Counter[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {name: counted[name] for name in COUNTS}
    for made, rate in RATES.items():
        figures[rate] = counted[f"{made}_on_time"] / counted[made] if counted[made] else None
    return figures


async def asked(
    client: httpx.AsyncClient, token: str, start: date, end: date, group_by: set[str], department: int | None
) -> dict[tuple[int | None, int | None] | None, dict[str, Any]]:
    """`caseStatistics` for the period, its rows keyed like `counted_from_log`'s; rows with no event in
    the period (only overdue cases) left out, as the log has nothing for them."""
    given: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "groupBy": sorted(group_by)}
    if department is not None:
        given["departmentId"] = relay_id("Department", department)
    rows = (await gql_data(client, STATISTICS, {"input": given}, token=token))["caseStatistics"]
    departments = dict(await Department.all().values_list("code", "id"))
    categories = dict(await Category.all().values_list("code", "id"))
    found: dict[tuple[int | None, int | None] | None, dict[str, Any]] = {}
    for row in rows:
        key = None
        if not row["total"]:
            key = (
                departments[row["department"]["code"]] if "DEPARTMENT" in group_by else None,
                categories[row["category"]["code"]] if "CATEGORY" in group_by else None,
            )
        figures = {name: row[name] for name in (*COUNTS, *RATES.values())}
        if key is None or any(figures[name] for name in COUNTS):
            found[key] = figures
    return found


async def more_history(client: httpx.AsyncClient, city: City) -> None:
    """May 2026, after the seeded March: an extension, a category correction, events around midnight."""
    dispatcher = city.staff["dispatcher"]
    g, h, k = [(await resident(client))[0] for _ in range(3)]

    # G: accepted, granted two more working days, resolved after the first due time but by the new one.
    at(2026, 5, 4, 10)
    case_g = await city.open(g, "noise.neighbour", 7)
    at(2026, 5, 4, 11)
    await city.step("police.west", case_g, "ACCEPT")
    requested = await gql_data(
        client,
        EXTENSION_REQUEST,
        {"input": {"caseId": case_g, "amount": 2, "reason": "Waiting for the noise measurement"}},
        token=city.staff["police.west"],
    )
    assert requested["caseExtensionRequest"]["userErrors"] == []
    extension = requested["caseExtensionRequest"]["extension"]["id"]
    decided = await gql_data(
        client, EXTENSION_DECIDE, {"input": {"extensionId": extension, "approve": True}}, token=dispatcher
    )
    assert decided["caseExtensionDecide"]["userErrors"] == []
    at(2026, 5, 12, 10)
    await city.resolve("police.west", case_g)

    # H: routed to police at 23:50, its category corrected at 00:10 the next day (a re-route to
    # sanitation under the new category), accepted, resolved, disputed, resolved again, confirmed.
    at(2026, 5, 5, 23, 50)
    case_h = await city.open(h, "noise.neighbour", 8)
    at(2026, 5, 6, 0, 10)
    changed = await gql_data(
        client,
        CATEGORY_CHANGE,
        {"input": {"caseId": case_h, "categoryCode": "waste.overflowing_bins"}},
        token=dispatcher,
    )
    assert changed["caseCategoryChange"]["userErrors"] == []
    at(2026, 5, 6, 9)
    await city.step("sanitation.staff", case_h, "ACCEPT")
    await city.resolve("sanitation.staff", case_h, photo=True)
    at(2026, 5, 7, 9)
    await city.step(h, case_h, "DISPUTE", reason="Still overflowing")
    at(2026, 5, 7, 23, 59)
    await city.resolve("sanitation.staff", case_h, photo=True)
    at(2026, 5, 8, 0, 1)
    await city.step(h, case_h, "CONFIRM")

    # K: returned twice by police across midnight, re-routed back to it each time, then accepted.
    at(2026, 5, 10, 23, 55)
    case_k = await city.open(k, "noise.neighbour", 9)
    at(2026, 5, 11, 0, 5)
    await city.step("police.west", case_k, "RETURN", reason="Not ours")
    await city.reroute(case_k, "police-west")
    at(2026, 5, 12, 9)
    await city.step("police.west", case_k, "RETURN", reason="Still not ours")
    await city.reroute(case_k, "police-west")
    at(2026, 5, 12, 10)
    await city.step("police.west", case_k, "ACCEPT")
    at(2026, 6, 1, 10)


async def test_figures_from_the_roll_ups_equal_the_log_counted_event_by_event(
    client: httpx.AsyncClient, month: City
) -> None:
    await more_history(client, month)
    events = await CaseEvent.all().order_by("id")
    police = (await Department.get(code="police-west")).id
    periods = [
        (date(2026, 2, 1), date(2026, 6, 1)),  # everything
        (date(2026, 3, 1), date(2026, 4, 1)),
        (date(2026, 5, 1), date(2026, 6, 1)),
        (date(2026, 3, 9), date(2026, 3, 10)),  # one day: C's route, return and re-route
        (date(2026, 3, 12), date(2026, 3, 20)),  # C's second resolution, not its first
        (date(2026, 5, 6), date(2026, 5, 8)),  # H after its category correction, before its close
        (date(2026, 5, 11), date(2026, 5, 12)),  # K's first return and re-route, after midnight
        (date(2026, 5, 12), date(2026, 5, 13)),  # K's second ones: K received again, by the same
    ]
    shapes: list[tuple[set[str], int | None]] = [
        ({"DEPARTMENT"}, None),
        ({"CATEGORY"}, None),
        ({"DEPARTMENT", "CATEGORY"}, None),
        (set(), None),
        ({"DEPARTMENT"}, police),
        ({"CATEGORY"}, police),
    ]
    dispatcher = month.staff["dispatcher"]
    for start, end in periods:
        for group_by, department in shapes:
            expected = counted_from_log(events, start, end, group_by, department)
            found = await asked(client, dispatcher, start, end, group_by, department)
            assert found == expected, (start, end, group_by, department)

    # The distinct-case counting holds: over everything, each case counts once per figure in the total.
    everything = counted_from_log(events, date(2026, 2, 1), date(2026, 6, 1), set())[None]
    for figure, kinds in CASE_COUNTS:
        cases = {e.case_id for e in events if e.kind in {k.value for k in kinds}}
        assert everything[figure] == len(cases), figure
    # An extension moved G's deadline: its resolution, after the first due time, counts as on time.
    resolved_g = [e for e in events if e.kind == "resolve" and _local_day(e.created_at) == date(2026, 5, 12)]
    assert [e.on_time for e in resolved_g] == [True]


async def test_rebuilding_from_the_log_gives_the_rows_the_writes_kept(
    client: httpx.AsyncClient, month: City
) -> None:
    await more_history(client, month)
    columns = (*rollups.KEY, *rollups.COUNTS)
    kept = sorted(await CaseDayFigures.all().values_list(*columns))
    assert kept, "the history wrote roll-ups"
    # Every counted event is in exactly one row.
    assert (
        sum(row[columns.index("events")] for row in kept)
        == await CaseEvent.filter(kind__in=sorted(rollups.COUNTED)).count()
    )
    await CaseDayFigures.all().delete()
    assert await rollups.rebuild() == await CaseEvent.filter(kind__in=sorted(rollups.COUNTED)).count()
    assert sorted(await CaseDayFigures.all().values_list(*columns)) == kept


async def test_the_first_migrate_after_the_upgrade_builds_the_missing_roll_ups(
    client: httpx.AsyncClient, month: City, tmp_path: Path
) -> None:
    """Upgrading past 0029 leaves the table empty beside an existing log: `envcase migrate` (and so
    `run`, which migrates) builds it once, in the city's timezone, and leaves built roll-ups alone."""
    await more_history(client, month)
    columns = (*rollups.KEY, *rollups.COUNTS)
    kept = sorted(await CaseDayFigures.all().values_list(*columns))
    await CaseDayFigures.all().delete()

    def migrate() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server", "migrate"],
            env={**os.environ, "DATABASE_URL": DATABASE_URL, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout + done.stderr

    assert "statistics roll-ups built from" in migrate()
    assert sorted(await CaseDayFigures.all().values_list(*columns)) == kept
    assert "statistics roll-ups built from" not in migrate()
