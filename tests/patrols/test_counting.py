"""The office's counting path (`patrol_counts`, no per-patrol reasons) against the full evaluation
(`compliance`, what `patrolCompliance` answers) on a varied seeded history, so the two cannot drift:
rules per week (per area, with a minimum gap, a county's own rule replacing the province's), per month
(active months, coverage), per working day (the city's holidays and make-up workdays) and per 旬 (a
rule coming into force mid-quarter); assignments ending, starting and changing hands mid-quarter; a
chief holding several areas; delegated, volunteer, unfinished and out-of-area patrols; local start
times around midnight; areas whose geometry changed after their patrols."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from identity.models import Role
from identity.service import create_user
from patrols.access import Viewer
from patrols.admin import assign_chief
from patrols.areas import upsert_area
from patrols.compliance import assignments_in, compliance, patrol_counts, upsert_rules
from patrols.models import Patrol, PatrolArea, PatrolStatus
from patrols.rules import AreaKind, ChiefKind, ChiefLevel
from patrols.track import PatrolMode
from tests.graphql_client import gql_data, new_account, sign_in

CITY = ZoneInfo("Asia/Shanghai")
REGION = "8899"
SOURCE = "test: the counting path against the full evaluation"
RULES: list[dict[str, Any]] = [
    {"code": "T-WEEK", "region_code": "889900", "chief_level": "VILLAGE", "chief_kind": "RIVER",
     "period": "WEEK", "min_count": 3, "min_duration_min": 20, "min_distance_km": 1, "min_gap_hours": 24,
     "count_scope": "PER_AREA", "source": SOURCE},
    {"code": "T-WEEK-COUNTY", "region_code": "889902", "chief_level": "VILLAGE", "chief_kind": "RIVER",
     "period": "WEEK", "min_count": 2, "min_duration_min": 10, "source": SOURCE},
    {"code": "T-MONTH", "region_code": "889900", "chief_level": "TOWNSHIP", "chief_kind": "RIVER",
     "period": "MONTH", "min_count": 2, "min_coverage": 0.5, "active_months": [4, 5], "source": SOURCE},
    {"code": "T-WORKDAY", "region_code": "889900", "chief_level": "VILLAGE", "chief_kind": "FOREST",
     "area_kind": "FOREST_AREA", "period": "WORKING_DAY", "min_count": 1, "min_duration_min": 5,
     "source": SOURCE},
    {"code": "T-DEKAD", "region_code": "889900", "chief_level": "TOWNSHIP", "chief_kind": "LAKE",
     "period": "DEKAD", "min_count": 1, "min_distance_km": 0.5, "effective_to": "2026-05-14",
     "source": SOURCE},
]  # fmt: skip
FIGURES = """query($period: String!, $region: String) {
  officeFigures(period: $period, region: $region, groupBy: [AREA]) {
    rows { area { code } patrolsRequired patrolsDone } total { patrolsRequired patrolsDone } } }"""
VERDICTS = """query($region: String, $from: Date!, $to: Date!) {
  patrolCompliance(region: $region, from: $from, to: $to) {
    areas { code } periods { area { code } required done } } }"""


def _segment(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.01, lat + 0.004]]}


def _square(lon: float, lat: float, side: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


async def _chief(username: str) -> int:
    return (await create_user(role=Role.CHIEF, username=username, password=None)).id


async def seed(rng: random.Random) -> list[PatrolArea]:
    """Two counties' rivers, two forest areas and a lake, their chiefs, and Q2 2026 of patrols (with
    some days either side), seeded in the database; then two areas' geometry corrected."""
    await upsert_rules(RULES)
    areas = [
        await upsert_area(code=f"TR-{n}", name=f"river {n}", kind=AreaKind.RIVER_SEGMENT,
                          admin_region="889901" if n < 4 else "889902", geometry=_segment(113 + n / 50, 34.0))
        for n in range(7)
    ] + [
        await upsert_area(code=f"TF-{n}", name=f"forest {n}", kind=AreaKind.FOREST_AREA, admin_region="889901",
                          geometry=_square(113.5 + n / 20, 34.2, 0.01))
        for n in range(2)
    ] + [
        await upsert_area(code="TL-0", name="lake", kind=AreaKind.LAKE, admin_region="889902",
                          geometry=_square(113.8, 34.3, 0.02))
    ]  # fmt: skip
    rivers, forests, lake = areas[:7], areas[7:9], areas[9]
    q2 = date(2026, 4, 1), None
    holdings: list[tuple[int, PatrolArea, ChiefLevel, ChiefKind, date, date | None]] = []
    for n, river in enumerate(rivers):
        # River 1 changes village chief on 10 May; river 5's chief starts on 15 April.
        if n == 1:
            holdings.append(
                (await _chief("v-1a"), river, ChiefLevel.VILLAGE, ChiefKind.RIVER, q2[0], date(2026, 5, 10))
            )
            holdings.append(
                (await _chief("v-1b"), river, ChiefLevel.VILLAGE, ChiefKind.RIVER, date(2026, 5, 11), None)
            )
        elif n == 5:
            holdings.append(
                (await _chief("v-5"), river, ChiefLevel.VILLAGE, ChiefKind.RIVER, date(2026, 4, 15), None)
            )
        else:
            holdings.append((await _chief(f"v-{n}"), river, ChiefLevel.VILLAGE, ChiefKind.RIVER, *q2))
    # One village chief holds rivers 2 and 3 (a per-area rule: each needs its own patrols).
    holdings.append((holdings[2][0], rivers[3], ChiefLevel.VILLAGE, ChiefKind.RIVER, *q2))
    # Township chiefs: one per county, over all its rivers (a per-chief rule: counted together).
    for county, held in ((1, rivers[:4]), (2, rivers[4:])):
        township = await _chief(f"t-{county}")
        holdings += [(township, r, ChiefLevel.TOWNSHIP, ChiefKind.RIVER, *q2) for r in held]
    holdings += [
        (await _chief(f"f-{n}"), f, ChiefLevel.VILLAGE, ChiefKind.FOREST, *q2) for n, f in enumerate(forests)
    ]
    holdings.append((await _chief("l-0"), lake, ChiefLevel.TOWNSHIP, ChiefKind.LAKE, *q2))
    county = (await create_user(role=Role.CHIEF, username="county", password="correct horse battery")).id
    holdings += [(county, r, ChiefLevel.COUNTY, ChiefKind.RIVER, *q2) for r in rivers]
    for chief, area, level, kind, valid_from, valid_to in holdings:
        await assign_chief(chief_id=chief, area_id=area.id, level=level, kind=kind, valid_from=valid_from,
                           valid_to=valid_to)  # fmt: skip
    assistant = await _chief("assistant")
    volunteer = (await create_user(role=Role.VOLUNTEER, username="volunteer", password=None)).id

    patrols = []
    for number in range(900):
        chief, area, *_ = rng.choice(holdings)
        # Late March to early July, at any local hour: some local dates differ from the UTC ones.
        day = date(2026, 3, 28) + timedelta(days=rng.randrange(100))
        started = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60), tzinfo=CITY)
        duration = rng.choice((3, 8, 15, 25, 45, 90)) * 60.0
        recorder, volunteer_patrol = chief, False
        if rng.random() < 0.08:
            recorder = assistant  # a delegate's patrol counts for the chief
        elif rng.random() < 0.04:
            recorder, volunteer_patrol = volunteer, True  # counted apart, never for a chief
        if rng.random() < 0.05:
            area = rng.choice(areas)  # an area the chief does not hold
        patrols.append(
            Patrol(
                client_id=f"c{number}", fingerprint="test", chief_id=recorder, counted_for_id=chief,
                area_id=area.id, by_volunteer=volunteer_patrol, mode=PatrolMode.FOOT,
                status=PatrolStatus.RECORDING if rng.random() < 0.03 else PatrolStatus.FINISHED,
                started_at=started.astimezone(UTC), started_received_at=started.astimezone(UTC),
                finished_at=(started + timedelta(seconds=duration)).astimezone(UTC),
                duration_s=rng.choice((duration, None)) if rng.random() < 0.1 else duration,
                distance_m=rng.choice((None, 300.0, 700.0, 1200.0, 2500.0)),
                coverage=rng.choice((None, 0.3, 0.6, 0.9)),
            )
        )  # fmt: skip
    await Patrol.bulk_create(patrols, batch_size=500)
    # Corrected geometry after the patrols: they keep the figures they were recorded with.
    await upsert_area(code="TR-0", name="river 0", kind=AreaKind.RIVER_SEGMENT, admin_region="889901",
                      geometry=_segment(113.001, 34.002))  # fmt: skip
    await upsert_area(code="TF-1", name="forest 1", kind=AreaKind.FOREST_AREA, admin_region="889901",
                      geometry=_square(113.55, 34.2, 0.02))  # fmt: skip
    return areas


@pytest.fixture
async def history(client: httpx.AsyncClient) -> list[PatrolArea]:
    return await seed(random.Random(29))


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 4, 1), date(2026, 6, 30)),  # the quarter
        (date(2026, 5, 1), date(2026, 5, 31)),  # May Day and its make-up workdays
        (date(2026, 5, 11), date(2026, 5, 20)),  # a 旬, the day a river changed chief
        (date(2026, 4, 3), date(2026, 6, 17)),  # partial weeks, months and 旬 at both ends
    ],
)
async def test_counting_gives_the_full_evaluations_figures(history, first: date, last: date) -> None:
    office = Viewer(user_id=None, overseer=True, commands=())
    loaded = await assignments_in(first, last, REGION)
    explained = await compliance(office, first, last, region=REGION, loaded=loaded)
    counted = await patrol_counts(office, first, last, region=REGION, loaded=loaded)

    assert [(c.chief_id, c.rule.code, c.assignments) for c in counted] == [
        (v.chief_id, v.rule.code, v.assignments) for v in explained
    ]
    for c, v in zip(counted, explained, strict=True):
        required: Counter[str | None] = Counter()
        done: Counter[str | None] = Counter()
        for period in v.verdict.periods:
            required[period.area_id] += period.required
            done[period.area_id] += min(period.done, period.required)
        assert {a.area_id: (a.required, a.done) for a in c.areas} == {
            area: (required[area], done[area]) for area in required
        }, (v.chief_id, v.rule.code)

    assert 0 < sum(v.verdict.done for v in explained) < sum(v.verdict.required for v in explained)
    if (first, last) == (date(2026, 4, 1), date(2026, 6, 30)):
        # The history is varied enough to tell the paths apart: every rule judged, and patrols
        # refused for each kind of reason.
        assert {v.rule.code for v in explained} == {r["code"] for r in RULES}
        reasons = " ".join(r for v in explained for j in v.verdict.patrols for r in j.reasons)
        for refusal in (" < ", "unknown", "within 24 h", "not counted for", "outside the rule's active months",
                        "not in force", "only partly inside", "is in no"):  # fmt: skip
            assert refusal in reasons, refusal


async def test_office_figures_match_the_verdicts_over_http(client: httpx.AsyncClient, history) -> None:
    """officeFigures (counted) per area against patrolCompliance (explained), as the office and as the
    county chief, who sees the river chiefs under them only."""
    admin = await new_account(client, Role.ADMIN, "admin")
    county = (await sign_in(client, "county", "correct horse battery"))["accessToken"]
    required = {}
    for who, token in (("office", admin), ("county", county)):
        figures = await gql_data(client, FIGURES, {"period": "2026-Q2", "region": REGION}, token=token)
        verdicts = await gql_data(client, VERDICTS, {"region": REGION, "from": "2026-04-01", "to": "2026-06-30"},
                                  token=token)  # fmt: skip
        ids = {a.code: a.id for a in history}
        expected: Counter[tuple[str, str]] = Counter()
        for verdict in verdicts["patrolCompliance"]:
            first_area = min((a["code"] for a in verdict["areas"]), key=ids.__getitem__)
            for period in verdict["periods"]:
                code = period["area"]["code"] if period["area"] else first_area
                expected[code, "required"] += period["required"]
                expected[code, "done"] += min(period["done"], period["required"])
        got: Counter[tuple[str, str]] = Counter()
        for row in figures["officeFigures"]["rows"]:
            got[row["area"]["code"], "required"] += row["patrolsRequired"]
            got[row["area"]["code"], "done"] += row["patrolsDone"]
        assert +got == +expected
        required[who] = figures["officeFigures"]["total"]["patrolsRequired"]
    assert 0 < required["county"] < required["office"]  # the forest and lake chiefs are not the county's
