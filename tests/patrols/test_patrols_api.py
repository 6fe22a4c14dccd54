"""Patrols over HTTP, as a chief's phone and a supervisor's console use them."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from kernel import clock
from kernel.outbox import OutboxEvent
from reports.models import Report, ReportSource
from server.seed import load_demo_city, seed_demo
from tests.conftest import make_settings
from tests.graphql_client import gql_data, sign_in

PASSWORD = "demo-password-2026"
T0 = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)  # Wednesday 6 May 2026, 09:00 in Beijing

START = """mutation($input: PatrolStartInput!) { patrolStart(input: $input) {
  patrol { id status delegated chief { username } recordedBy { username } }
  userErrors { code field message } } }"""
APPEND = """mutation($input: PatrolTrackAppendInput!) { patrolTrackAppend(input: $input) {
  stored duplicates heldRanges { first last } patrol { pointCount }
  userErrors { code field message } } }"""
FINISH = """mutation($input: PatrolFinishInput!) { patrolFinish(input: $input) {
  patrol { id status finishedAt finishedReceivedAt lateUpload
    metrics { durationS movingTimeS distanceM coverage validPointCount flaggedPointCount }
    authenticity { suspicious findings { flag reason } } }
  userErrors { code field message } } }"""
PATROL = """query($id: ID!) { node(id: $id) { ... on Patrol { id status pointCount lateUpload delegated
  metrics { distanceM coverage durationS validPointCount flaggedPointCount }
  authenticity { suspicious findings { flag reason } }
  observations { id caseReference category { code } }
  track(first: 3) { nodes { seq flags { flag reason } } } } } }"""
OBSERVE = """mutation($input: PatrolObservationRecordInput!) { patrolObservationRecord(input: $input) {
  observation { id caseReference } userErrors { code field message } } }"""
ESCALATE = """mutation($input: PatrolObservationEscalateInput!) { patrolObservationEscalate(input: $input) {
  observation { id caseReference escalatedAt } userErrors { code field message } } }"""
MY_CASES = (
    "{ myReports(first: 5) { nodes { case { reference status department { code } category { code } } } } }"
)
COMPLIANCE = """query($chief: ID, $area: ID, $region: String, $from: Date!, $to: Date!) {
  patrolCompliance(chiefId: $chief, areaId: $area, region: $region, from: $from, to: $to) {
    chief { username } rule { code source period minCount } required done missing met
    periods { label required done missing note }
    patrols { patrolId counted period reasons delegated } } }"""
GPX_IMPORT = """mutation($input: PatrolGpxImportInput!) { patrolGpxImport(input: $input) {
  patrol { id status pointCount metrics { distanceM } } imported duplicatesSkipped
  userErrors { code field message } } }"""


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * r * math.asin(math.sqrt(h))


def path_length(coords: list[tuple[float, float]]) -> float:
    return sum(haversine(a[1], a[0], b[1], b[0]) for a, b in zip(coords, coords[1:], strict=False))


def along(coords: list[list[float]], distance: float) -> tuple[float, float]:
    """(lat, lon) at `distance` metres along a lon/lat polyline (linear between vertices)."""
    for a, b in zip(coords, coords[1:], strict=False):
        step = haversine(a[1], a[0], b[1], b[0])
        if distance <= step:
            f = distance / step
            return a[1] + f * (b[1] - a[1]), a[0] + f * (b[0] - a[0])
        distance -= step
    return coords[-1][1], coords[-1][0]


def walk(coords: list[list[float]], n: int, rng: random.Random, t0: datetime = T0) -> list[dict]:
    """A phone walking along the river at 1 Hz with a varying pace (1.5-2.3 m/s)."""
    points, s = [], 0.0
    for i in range(n):
        lat, lon = along(coords, s)
        t = t0 + timedelta(seconds=i)
        points.append({"seq": i, "t": t.isoformat(), "latitude": lat, "longitude": lon, "accuracy": 5.0})
        s += rng.uniform(1.5, 2.3)
    return points


@pytest.fixture
def settings(tmp_path):
    # The tests move the clock by days (late uploads); tokens must outlive that.
    return make_settings(media_root=tmp_path / "media", access_token_seconds=30 * 86400)


@pytest.fixture
async def city(client):
    return await demo_city(client)


async def demo_city(client):
    """The seeded demo city, its chiefs' tokens and ids, the server's clock at T0 + 1 h."""
    await seed_demo()
    # Signed in on the real clock (JWT expiry is checked against it); then the server's clock is moved.
    tokens = {u: (await sign_in(client, u, PASSWORD))["accessToken"] for u in (
        "chief.village", "chief.county", "chief.lake", "admin", "dispatcher", "water.staff")}  # fmt: skip
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code lengthM geometry } } }")
    by_code = {a["code"]: a for a in areas["patrolAreas"]["nodes"]}
    users = {u: (await gql_data(client, "{ me { id } }", token=t))["me"]["id"] for u, t in tokens.items()}
    return {"tokens": tokens, "areas": by_code, "users": users}


async def start(client, city, user="chief.village", area="R-QH-01", client_id="p1", started=T0, mode="FOOT"):
    data = await gql_data(client, START, {"input": {
        "clientId": client_id, "areaId": city["areas"][area]["id"], "mode": mode, "startedAt": started.isoformat()}},
        token=city["tokens"][user])  # fmt: skip
    return data["patrolStart"]


async def append(client, token, patrol_id, points, **extra):
    data = await gql_data(
        client, APPEND, {"input": {"patrolId": patrol_id, "points": points, **extra}}, token=token
    )
    return data["patrolTrackAppend"]


async def finish(client, token, patrol_id, at, **extra):
    data = await gql_data(
        client, FINISH, {"input": {"patrolId": patrol_id, "finishedAt": at.isoformat(), **extra}}, token=token
    )
    return data["patrolFinish"]


def numbers(reason: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", reason)]


# --- the "done when" scenario -------------------------------------------------------------------


async def test_offline_patrol_uploaded_after_finish_matches_independent_figures(client, city):
    rng = random.Random(6)
    token = city["tokens"]["chief.village"]
    river = city["areas"]["R-QH-01"]["geometry"]["coordinates"]
    points = walk(river, 3000, rng)
    clock.set_clock(lambda: T0 + timedelta(hours=3))  # the phone comes back online later

    patrol = (await start(client, city))["patrol"]
    assert patrol["status"] == "RECORDING" and not patrol["delegated"]
    # Observations made on the way, synced when back online.
    seen = {"clientId": "o1", "patrolId": patrol["id"], "category": "FLOATING_RUBBISH",
            "location": {"latitude": points[600]["latitude"], "longitude": points[600]["longitude"]},
            "observedAt": points[600]["t"], "note": "塑料瓶堆积 plastic bottles"}  # fmt: skip
    observed = (await gql_data(client, OBSERVE, {"input": seen}, token=token))["patrolObservationRecord"]
    assert observed["userErrors"] == []
    again = (await gql_data(client, OBSERVE, {"input": seen}, token=token))["patrolObservationRecord"]
    assert again["observation"]["id"] == observed["observation"]["id"]
    finished = await finish(client, token, patrol["id"], T0 + timedelta(seconds=2999))
    assert finished["userErrors"] == [] and finished["patrol"]["metrics"]["validPointCount"] == 0

    # Shuffled batches of 100, a fifth of them sent twice, and some overlapping batches.
    shuffled = points[:]
    rng.shuffle(shuffled)
    batches = [shuffled[i : i + 100] for i in range(0, 3000, 100)]
    batches += rng.sample(batches, 6) + [shuffled[50:150], shuffled[2950:] + shuffled[:20]]
    rng.shuffle(batches)
    stored = duplicates = 0
    for batch in batches:
        answer = await append(client, token, patrol["id"], batch)
        assert answer["userErrors"] == []
        stored, duplicates = stored + answer["stored"], duplicates + answer["duplicates"]
    assert stored == 3000 and duplicates == 6 * 100 + 100 + 70
    assert answer["heldRanges"] == [{"first": 0, "last": 2999}] and answer["patrol"]["pointCount"] == 3000

    node = (await gql_data(client, PATROL, {"id": patrol["id"]}, token=token))["node"]
    metrics = node["metrics"]
    expected_distance = path_length([(p["longitude"], p["latitude"]) for p in points])
    assert metrics["distanceM"] == pytest.approx(expected_distance, rel=0.015)
    river_length = path_length([tuple(c) for c in river])
    walked_along = path_length([(p["longitude"], p["latitude"]) for p in points])
    assert metrics["coverage"] == pytest.approx(min(1.0, (walked_along + 50.0) / river_length), abs=0.01)
    assert metrics["durationS"] == pytest.approx(2999.0)
    assert metrics["validPointCount"] == 3000 and not node["lateUpload"]

    # Compliance: the demo city's village rule (weekly, >= 10 min, >= 1 km, >= 50 % coverage).
    verdicts = (await gql_data(client, COMPLIANCE, {"chief": city["users"]["chief.village"],
        "from": "2026-05-04", "to": "2026-05-10"}, token=token))["patrolCompliance"]  # fmt: skip
    [verdict] = verdicts
    assert verdict["rule"]["code"] == "DEMO-RIVER-VILLAGE" and "河南" in verdict["rule"]["source"]
    assert (verdict["required"], verdict["done"], verdict["missing"], verdict["met"]) == (1, 1, 0, True)
    [judged] = verdict["patrols"]
    assert judged["counted"] and judged["period"] == "2026-W19" and judged["patrolId"] == patrol["id"]
    duration, distance, coverage = (numbers(r)[0] for r in judged["reasons"][:3])
    assert duration == pytest.approx(2999 / 60, abs=0.1)
    assert distance == pytest.approx(expected_distance / 1000, abs=0.1)
    assert coverage == pytest.approx(100 * min(1.0, (walked_along + 50) / river_length), abs=1.0)
    assert judged["reasons"][3] == "counted for 2026-W19"

    # The observation becomes a case routed like a resident's report: floating rubbish -> river office.
    escalated = (await gql_data(client, ESCALATE, {"input": {"observationId": observed["observation"]["id"]}},
                                token=token))["patrolObservationEscalate"]  # fmt: skip
    reference = escalated["observation"]["caseReference"]
    assert escalated["userErrors"] == [] and reference
    twice = (await gql_data(client, ESCALATE, {"input": {"observationId": observed["observation"]["id"]}},
                            token=token))["patrolObservationEscalate"]  # fmt: skip
    assert twice["observation"]["caseReference"] == reference
    # The chief follows the case like any reporter; it landed in the river chief office's queue.
    mine = (await gql_data(client, MY_CASES, token=token))["myReports"]["nodes"]
    assert len(mine) == 1
    case = mine[0]["case"]
    assert case["reference"] == reference and case["department"]["code"] == "river-office"
    assert case["category"]["code"] == "water.floating_rubbish"
    report = await Report.get(case__reference=reference)
    assert report.source == ReportSource.PATROL and report.origin["area_code"] == "R-QH-01"
    # Announced once each, in the transactions that made them (the retry announced nothing).
    announced = (
        await OutboxEvent.filter(subject__in=["patrol", "observation"])
        .order_by("id")
        .values_list("kind", "data")
    )
    assert [kind for kind, _ in announced] == ["patrol_finished", "observation_handed_off"]
    assert announced[1][1]["case"] == report.case_id


# --- bad input ------------------------------------------------------------------------------------


async def test_points_for_someone_elses_patrol_are_not_found(client, city):
    patrol = (await start(client, city))["patrol"]
    point = {"seq": 0, "t": T0.isoformat(), "latitude": 30.3, "longitude": 120.06}
    answer = await append(client, city["tokens"]["chief.county"], patrol["id"], [point])
    assert [e["code"] for e in answer["userErrors"]] == ["NOT_FOUND"] and answer["stored"] == 0
    node = await gql_data(client, PATROL, {"id": patrol["id"]}, token=city["tokens"]["chief.lake"])
    assert node["node"] is None


async def test_repeated_seq_with_other_coordinates_is_a_conflict_for_that_point_only(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    points = walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 10, random.Random(1))
    assert (await append(client, token, patrol["id"], points[:5]))["stored"] == 5
    moved = {**points[2], "latitude": points[2]["latitude"] + 0.001}
    twin = {**points[7], "longitude": points[7]["longitude"] + 0.001}
    answer = await append(client, token, patrol["id"], [moved, *points[5:], twin, points[0]])
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("CONFLICT", ["input", "points", "0"]), ("CONFLICT", ["input", "points", "6"])]  # fmt: skip
    assert answer["stored"] == 5 and answer["duplicates"] == 1
    assert answer["heldRanges"] == [{"first": 0, "last": 9}]


async def test_batches_are_bounded_and_times_need_an_offset(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    too_many = [{"seq": i, "t": T0.isoformat(), "latitude": 30.3, "longitude": 120.06} for i in range(1001)]
    assert (await append(client, token, patrol["id"], too_many))["userErrors"][0]["code"] == "INVALID"
    naive = {"seq": 1, "t": "2026-05-06T09:00:00", "latitude": 30.3, "longitude": 120.06}
    good = {"seq": 2, "t": T0.isoformat(), "latitude": 30.3, "longitude": 120.06}
    answer = await append(client, token, patrol["id"], [naive, good])
    assert answer["stored"] == 1 and answer["userErrors"][0]["field"] == ["input", "points", "0", "t"]


async def test_start_is_idempotent_and_only_for_assigned_chiefs(client, city):
    first = await start(client, city)
    assert (await start(client, city))["patrol"]["id"] == first["patrol"]["id"]
    other = await start(client, city, started=T0 + timedelta(minutes=5))
    assert other["userErrors"][0]["code"] == "CONFLICT"
    lake = await start(client, city, area="L-MJ-01", client_id="p2")
    assert lake["userErrors"][0]["code"] == "FORBIDDEN"


async def test_finishing_twice_returns_the_same_patrol(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    await append(
        client,
        token,
        patrol["id"],
        walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 120, random.Random(2)),
    )
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    once = await finish(client, token, patrol["id"], T0 + timedelta(seconds=119))
    clock.set_clock(lambda: T0 + timedelta(hours=2))
    twice = await finish(client, token, patrol["id"], T0 + timedelta(seconds=500))
    assert twice == once and once["patrol"]["status"] == "FINISHED"
    assert await OutboxEvent.filter(kind="patrol_finished").count() == 1


async def test_points_a_week_after_the_finish_are_stored_and_flag_a_late_upload(client, city):
    token = city["tokens"]["chief.village"]
    points = walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 600, random.Random(3))
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    patrol = (await start(client, city))["patrol"]
    await append(client, token, patrol["id"], points[:300])
    first = await finish(client, token, patrol["id"], T0 + timedelta(seconds=599))
    clock.set_clock(lambda: T0 + timedelta(days=7, hours=1))
    assert (await append(client, token, patrol["id"], points[300:]))["stored"] == 300
    node = (await gql_data(client, PATROL, {"id": patrol["id"]}, token=token))["node"]
    assert node["lateUpload"] and node["metrics"]["validPointCount"] == 600
    assert node["metrics"]["distanceM"] > 1.8 * first["patrol"]["metrics"]["distanceM"]
    late = [f for f in node["authenticity"]["findings"] if f["flag"] == "LATE_UPLOAD"]
    assert late == [{"flag": "LATE_UPLOAD", "reason": "points were uploaded 7 days after the finish"}]


async def test_a_single_point_patrol_finishes_with_zero_distance(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    await append(
        client, token, patrol["id"], [{"seq": 0, "t": T0.isoformat(), "latitude": 30.3, "longitude": 120.06}]
    )
    clock.set_clock(lambda: T0 + timedelta(minutes=20))
    done = await finish(client, token, patrol["id"], T0 + timedelta(minutes=15))
    metrics = done["patrol"]["metrics"]
    assert done["userErrors"] == [] and metrics["distanceM"] == 0 and metrics["validPointCount"] == 1
    assert 0 < metrics["coverage"] < 0.05


async def test_junk_and_spike_points_are_flagged_not_deleted(client, city):
    token = city["tokens"]["chief.village"]
    points = walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 200, random.Random(4))
    points[50] = {**points[50], "latitude": 0.0, "longitude": 0.0}
    points[100] = {**points[100], "latitude": points[100]["latitude"] + 0.01}
    patrol = (await start(client, city))["patrol"]
    await append(client, token, patrol["id"], points)
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    done = await finish(client, token, patrol["id"], T0 + timedelta(seconds=199))
    assert done["patrol"]["metrics"]["flaggedPointCount"] == 2
    assert {f["flag"] for f in done["patrol"]["authenticity"]["findings"]} >= {"SPEED_SPIKES"}
    node = (await gql_data(client, PATROL, {"id": patrol["id"]}, token=token))["node"]
    assert node["pointCount"] == 200


async def test_device_clock_an_hour_ahead_is_reported(client, city):
    token = city["tokens"]["chief.village"]
    ahead = T0 + timedelta(hours=1)
    clock.set_clock(lambda: T0 + timedelta(minutes=10))
    points = walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 300, random.Random(5), t0=ahead)
    patrol = (await start(client, city, started=ahead))["patrol"]
    await append(client, token, patrol["id"], points, sentAt=(ahead + timedelta(minutes=10)).isoformat())
    done = await finish(client, token, patrol["id"], ahead + timedelta(seconds=299))
    skew = [f["reason"] for f in done["patrol"]["authenticity"]["findings"] if f["flag"] == "CLOCK_SKEW"]
    assert skew == ["device clock is 1 h 0 min ahead of the server clock"]


AREA_IMPORT = """mutation($input: PatrolAreaImportInput!) { patrolAreaImport(input: $input) {
  areas { id code lengthM areaM2 bbox } userErrors { code field message } } }"""
ASSIGN = """mutation($input: ChiefAssignmentCreateInput!) { chiefAssignmentCreate(input: $input) {
  assignment { id level area { code } } userErrors { code field message } } }"""


@pytest.mark.parametrize(
    ("line", "track"),
    [
        (
            [[179.995, 10.0], [-179.995, 10.0]],
            [(10.0, 179.996), (10.0, 179.999), (10.0, -179.999), (10.0, -179.996)],
        ),
        (
            [[0.0, 89.999], [90.0, 89.999], [180.0, 89.999]],
            [(89.999, 0.0), (89.9995, 45.0), (90.0, 0.0), (89.999, 180.0)],
        ),
    ],
    ids=["antimeridian", "pole"],
)
async def test_antimeridian_and_pole_patrols_do_not_crash(client, city, line, track):
    admin = city["tokens"]["admin"]
    feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
               "properties": {"code": "R-FAR", "name": "far", "kind": "RIVER_SEGMENT", "admin_region": "999901"}}  # fmt: skip
    imported = (await gql_data(client, AREA_IMPORT, {"input": {"geojson": {
        "type": "FeatureCollection", "features": [feature]}}}, token=admin))["patrolAreaImport"]  # fmt: skip
    [area] = imported["areas"]
    assert 0 < area["lengthM"] < 2_000
    assigned = (await gql_data(client, ASSIGN, {"input": {"chiefId": city["users"]["chief.village"],
        "areaId": area["id"], "level": "VILLAGE", "kind": "RIVER", "validFrom": "2026-01-01"}}, token=admin))  # fmt: skip
    assert assigned["chiefAssignmentCreate"]["userErrors"] == []
    city["areas"]["R-FAR"] = area
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city, area="R-FAR", mode="BOAT"))["patrol"]
    points = [{"seq": i, "t": (T0 + timedelta(seconds=60 * i)).isoformat(), "latitude": la, "longitude": lo}
              for i, (la, lo) in enumerate(track)]  # fmt: skip
    await append(client, token, patrol["id"], points)
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    done = await finish(client, token, patrol["id"], T0 + timedelta(minutes=4))
    assert done["userErrors"] == []
    metrics = done["patrol"]["metrics"]
    assert 0 < metrics["distanceM"] < 2_000 and 0 <= metrics["coverage"] <= 1


# --- GPX ------------------------------------------------------------------------------------------


def gpx(points: list[tuple[float, float, str | None]]) -> str:
    pts = "".join(
        f'<trkpt lat="{la}" lon="{lo}">' + (f"<time>{t}</time>" if t else "") + "</trkpt>"
        for la, lo, t in points
    )
    return f'<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1"><trk><trkseg>{pts}</trkseg></trk></gpx>'


async def _import(client, city, text, client_id="g1"):
    data = await gql_data(client, GPX_IMPORT, {"input": {"clientId": client_id, "areaId": city["areas"]["R-QH-01"]["id"],
        "mode": "FOOT", "gpx": text}}, token=city["tokens"]["chief.village"])  # fmt: skip
    return data["patrolGpxImport"]


async def test_gpx_import_creates_a_finished_patrol_and_counts_duplicates(client, city):
    clock.set_clock(lambda: T0 + timedelta(hours=2))
    river = city["areas"]["R-QH-01"]["geometry"]["coordinates"]
    points = walk(river, 300, random.Random(7))
    rows = [(p["latitude"], p["longitude"], p["t"]) for p in points]
    text = gpx(rows + rows[:10])
    result = await _import(client, city, text)
    assert result["userErrors"] == [] and result["patrol"]["status"] == "FINISHED"
    assert (result["imported"], result["duplicatesSkipped"]) == (300, 10)
    assert result["patrol"]["metrics"]["distanceM"] > 400
    again = await _import(client, city, text)
    assert again["patrol"]["id"] == result["patrol"]["id"] and (
        again["imported"],
        again["duplicatesSkipped"],
    ) == (0, 310)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not xml", "not well-formed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            "<gpx><trk><trkseg><trkpt lat='1' lon='1'><time>&lol2;</time></trkpt></trkseg></trk></gpx>",
            "DTD",
        ),
        (
            gpx([(30.3, 120.06, "2026-05-06T01:00:00Z"), (30.3, 120.07, None)]),
            "1 of 2 track points have no readable <time>",
        ),
    ],
    ids=["not-xml", "xml-bomb", "no-times"],
)
async def test_bad_gpx_is_refused_with_a_clear_error_and_creates_nothing(client, city, text, message):
    result = await _import(client, city, text)
    assert result["patrol"] is None and result["userErrors"][0]["code"] == "INVALID"
    assert message in result["userErrors"][0]["message"]
    mine = await gql_data(client, "{ myPatrols { nodes { id } } }", token=city["tokens"]["chief.village"])
    assert mine["myPatrols"]["nodes"] == []


async def test_gpx_upload_as_a_multipart_file(client, city):
    clock.set_clock(lambda: T0 + timedelta(hours=2))
    rows = [
        (p["latitude"], p["longitude"], p["t"])
        for p in walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 50, random.Random(8))
    ]
    import json

    operations = {
        "query": GPX_IMPORT,
        "variables": {
            "input": {
                "clientId": "g2",
                "areaId": city["areas"]["R-QH-01"]["id"],
                "mode": "FOOT",
                "file": None,
            }
        },
    }
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("walk.gpx", gpx(rows).encode(), "application/gpx+xml")},
        headers={"Authorization": f"Bearer {city['tokens']['chief.village']}"},
    )
    result = response.json()["data"]["patrolGpxImport"]
    assert result["userErrors"] == [] and result["imported"] == 50


def _over_cap_gpx(tail: str = "</trkseg></trk></gpx>") -> bytes:
    """One point more than a patrol may hold, well under the GPX byte cap."""
    from patrols.recording import MAX_POINTS_PER_PATROL

    point = '<trkpt lat="30.3" lon="120.06"><time>2026-05-06T01:00:00Z</time></trkpt>'
    head = '<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1"><trk><trkseg>'
    return (head + point * (MAX_POINTS_PER_PATROL + 1) + tail).encode()


async def _upload_gpx(client, city, data: bytes, client_id: str = "big"):
    import json

    variables = {
        "input": {
            "clientId": client_id,
            "areaId": city["areas"]["R-QH-01"]["id"],
            "mode": "FOOT",
            "file": None,
        }
    }
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps({"query": GPX_IMPORT, "variables": variables}),
              "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("big.gpx", data, "application/gpx+xml")},
        headers={"Authorization": f"Bearer {city['tokens']['chief.village']}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["data"]["patrolGpxImport"]


async def test_gpx_over_the_patrol_point_cap_is_refused_while_it_is_read(client, city):
    from patrols.gpx import MAX_GPX_BYTES

    # The cap is checked while streaming: the parser stops at the extra point and never reaches the
    # broken end of this file (which would be INVALID if it were read to the end).
    data = _over_cap_gpx(tail="<trkpt lat=")
    assert len(data) < MAX_GPX_BYTES
    result = await _upload_gpx(client, city, data)
    assert result["patrol"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("TOO_LARGE", ["file"])]
    mine = await gql_data(client, "{ myPatrols { nodes { id } } }", token=city["tokens"]["chief.village"])
    assert mine["myPatrols"]["nodes"] == []


async def test_a_large_gpx_is_parsed_off_the_event_loop(client, city):
    """While a large file is being parsed, in a worker thread, the loop serves another request."""
    import asyncio
    import sys
    import threading
    from types import FrameType

    def parsing_thread() -> int | None:
        for ident, frame in sys._current_frames().items():
            walk_back: FrameType | None = frame
            while walk_back is not None:
                if walk_back.f_code.co_name == "_track_points":
                    return ident
                walk_back = walk_back.f_back
        return None

    upload = asyncio.create_task(_upload_gpx(client, city, _over_cap_gpx()))
    parser = None
    while parser is None and not upload.done():  # this coroutine runs only while the loop is free
        await asyncio.sleep(0.001)
        parser = parsing_thread()
    assert parser is not None and parser != threading.get_ident(), (
        "the GPX was never seen parsing off the loop"
    )
    cheap = await gql_data(client, "{ __typename }")
    assert cheap == {"__typename": "Query"}
    assert not upload.done()  # served while the import was still at work
    result = await upload
    assert result["userErrors"][0]["code"] == "TOO_LARGE"


# --- privacy, export, delegation ------------------------------------------------------------------


async def _finished_patrol(client, city, user="chief.village", client_id="p1"):
    token = city["tokens"][user]
    patrol = (await start(client, city, user=user, client_id=client_id))["patrol"]
    await append(
        client,
        token,
        patrol["id"],
        walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 900, random.Random(9)),
    )
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    await finish(client, token, patrol["id"], T0 + timedelta(seconds=899))
    return patrol


async def test_tracks_are_visible_to_the_chief_supervisors_and_overseers_only(client, city):
    patrol = await _finished_patrol(client, city)
    for user, visible in [("chief.village", True), ("chief.county", True), ("admin", True),
                          ("chief.lake", False), ("dispatcher", False), ("water.staff", False)]:  # fmt: skip
        node = (await gql_data(client, PATROL, {"id": patrol["id"]}, token=city["tokens"][user]))["node"]
        assert (node is not None) == visible, user
        gpx_response = await client.get(
            f"/patrols/{patrol['id']}/track.gpx", headers={"Authorization": f"Bearer {city['tokens'][user]}"}
        )
        assert gpx_response.status_code == (200 if visible else 404), user
    assert (await client.get(f"/patrols/{patrol['id']}/track.gpx")).status_code == 401
    anonymous = await gql_data(client, PATROL, {"id": patrol["id"]})
    assert anonymous["node"] is None
    days = await gql_data(client, "query($a: ID!) { areaPatrolDays(areaId: $a, month: \"2026-05\") }",
                          {"a": city["areas"]["R-QH-01"]["id"]})  # fmt: skip
    assert days["areaPatrolDays"] == ["2026-05-06"]


async def test_observations_and_assignments_are_visible_like_their_patrol_and_chief(client, city):
    patrol = await _finished_patrol(client, city)
    token = city["tokens"]["chief.village"]
    seen = {"clientId": "o1", "patrolId": patrol["id"], "category": "FLOATING_RUBBISH",
            "location": {"latitude": 34.75, "longitude": 113.62}, "observedAt": T0.isoformat()}  # fmt: skip
    observed = (await gql_data(client, OBSERVE, {"input": seen}, token=token))["patrolObservationRecord"]
    assert observed["userErrors"] == []
    [assignment] = (await gql_data(client, "{ myAssignments { id } }", token=token))["myAssignments"]
    node = "query($id: ID!) { node(id: $id) { id } }"
    judged = """query($chief: ID) { patrolCompliance(chiefId: $chief, from: "2026-05-04", to: "2026-05-10") {
      patrols { patrol { id } } } }"""
    for user, visible in [("chief.village", True), ("chief.county", True), ("admin", True),
                          ("chief.lake", False), ("dispatcher", False), (None, False)]:  # fmt: skip
        as_user = {"token": city["tokens"][user]} if user else {}
        for global_id in (observed["observation"]["id"], assignment["id"]):
            found = (await gql_data(client, node, {"id": global_id}, **as_user))["node"]
            assert found == ({"id": global_id} if visible else None), (user, global_id)
        if user:
            verdicts = await gql_data(client, judged, {"chief": city["users"]["chief.village"]}, **as_user)
            patrols = [j["patrol"] for v in verdicts["patrolCompliance"] for j in v["patrols"]]
            assert patrols == ([{"id": patrol["id"]}] if visible else []), user


async def test_track_exports_round_trip_through_gpx_and_geojson(client, city):
    patrol = await _finished_patrol(client, city)
    auth = {"Authorization": f"Bearer {city['tokens']['chief.village']}"}
    exported = await client.get(f"/patrols/{patrol['id']}/track.gpx", headers=auth)
    assert exported.headers["content-type"].startswith("application/gpx+xml")
    from patrols.gpx import parse_gpx

    assert len(parse_gpx(exported.content)) == 900
    geojson = (await client.get(f"/patrols/{patrol['id']}/track.geojson", headers=auth)).json()
    assert geojson["geometry"]["type"] == "LineString" and len(geojson["geometry"]["coordinates"]) == 900
    assert (await client.get(f"/patrols/{patrol['id']}/track.kml", headers=auth)).status_code == 404


async def test_a_delegated_assistant_patrols_for_the_chief(client, city):
    from identity.models import Role
    from tests.graphql_client import new_account

    clock.set_clock(None)
    assistant = await new_account(client, Role.CHIEF, "assistant")
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    assistant_id = (await gql_data(client, "{ me { id } }", token=assistant))["me"]["id"]
    delegated = await gql_data(client, """mutation($input: PatrolDelegationCreateInput!) { patrolDelegationCreate(input: $input) {
        delegation { validFrom assistant { username } } userErrors { code message } } }""",
        {"input": {"assistantId": assistant_id, "validFrom": "2026-05-01", "validTo": "2026-05-31"}},
        token=city["tokens"]["chief.village"])  # fmt: skip
    assert delegated["patrolDelegationCreate"]["userErrors"] == []
    city["tokens"]["assistant"] = assistant
    started = await start(client, city, user="assistant")
    assert started["patrol"]["delegated"] and started["patrol"]["chief"]["username"] == "chief.village"
    patrol = await _finished_patrol(client, city, user="assistant")
    verdicts = (await gql_data(client, COMPLIANCE, {"chief": city["users"]["chief.village"],
        "from": "2026-05-04", "to": "2026-05-10"}, token=city["tokens"]["chief.village"]))["patrolCompliance"]  # fmt: skip
    [judged] = verdicts[0]["patrols"]
    assert judged["patrolId"] == patrol["id"] and judged["delegated"]
    assert judged["reasons"][0].endswith("≥ 10 min required")  # judged like the chief's own patrols
    clock.set_clock(lambda: datetime(2026, 6, 3, tzinfo=UTC))  # the delegation ended on 31 May
    late = await start(
        client, city, user="assistant", client_id="p9", started=datetime(2026, 6, 2, 1, tzinfo=UTC)
    )
    assert late["userErrors"][0]["code"] == "FORBIDDEN"


async def test_compliance_explains_short_patrols_and_missing_weeks(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    await append(
        client,
        token,
        patrol["id"],
        walk(city["areas"]["R-QH-01"]["geometry"]["coordinates"], 300, random.Random(10)),
    )
    clock.set_clock(lambda: T0 + timedelta(hours=1))
    await finish(client, token, patrol["id"], T0 + timedelta(seconds=299))
    verdicts = (await gql_data(client, COMPLIANCE, {"region": "9999", "from": "2026-05-04", "to": "2026-05-17"},
                               token=city["tokens"]["chief.county"]))["patrolCompliance"]  # fmt: skip
    by_chief = {(v["chief"]["username"], v["rule"]["code"]): v for v in verdicts}
    village = by_chief["chief.village", "DEMO-RIVER-VILLAGE"]
    assert (village["required"], village["done"], village["missing"]) == (2, 0, 2)
    reasons = village["patrols"][0]["reasons"]
    assert reasons[0] == "4.9 min < 10 min required" and reasons[-1] == "not counted for 2026-W19"
    county = by_chief["chief.county", "DEMO-RIVER-COUNTY"]
    assert county["periods"][0]["note"] == "period 2026-Q2 is only partly inside the assessment range"
    # A river chief assesses river chiefs below them, not the lake or forest chiefs of the district.
    assert {chief for chief, _ in by_chief} == {"chief.village", "chief.county"}
    own = (await gql_data(client, COMPLIANCE, {"region": "9999", "from": "2026-05-04", "to": "2026-05-17"},
                          token=token))["patrolCompliance"]  # fmt: skip
    assert {v["chief"]["username"] for v in own} == {"chief.village"}


async def test_demo_rules_and_areas_are_seeded_with_measures(client, city):
    areas = load_demo_city()["patrol_areas"]
    assert {a["code"] for a in areas} == set(city["areas"])
    river = city["areas"]["R-QH-01"]
    expected = path_length([tuple(c) for c in river["geometry"]["coordinates"]])
    assert river["lengthM"] == pytest.approx(expected, rel=0.005)


async def test_compact_rows_store_the_same_points_and_report_bad_rows_in_place(client, city):
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city))["patrol"]
    ms = int(T0.timestamp() * 1000)
    rows = [[0, ms, 30.3, 120.06, 5.0, None, False], [1, ms + 1000, 30.3, 120.0601], ["x", ms, 1, 2],
            [0, ms, 30.31, 120.06]]  # fmt: skip
    data = await gql_data(
        client,
        APPEND,
        {"input": {"patrolId": patrol["id"], "rows": rows}},
        token=token,
    )
    answer = data["patrolTrackAppend"]
    assert answer["stored"] == 2 and answer["heldRanges"] == [{"first": 0, "last": 1}]
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("INVALID", ["input", "rows", "2"]), ("CONFLICT", ["input", "rows", "3"])]  # fmt: skip
    again = await append(client, token, patrol["id"], [{"seq": 1, "t": (T0 + timedelta(seconds=1)).isoformat(),
                                                        "latitude": 30.3, "longitude": 120.0601}])  # fmt: skip
    assert again["duplicates"] == 1 and again["userErrors"] == []


# --- how a track is measured (issue 17) -----------------------------------------------------------

FIGURES = """query($id: ID!) { node(id: $id) { ... on Patrol {
  metrics { durationS movingTimeS pauseTimeS gapTimeS distanceM rawDistanceM
    straightness { value measuredM stretches pointCount }
    regularity { intervalVariation speedVariation measuredM stretches pointCount } }
  authenticity { suspicious findings { flag reason } } } } }"""
PAUSE = """mutation($input: PatrolTimeInput!) { patrolPause(input: $input) { userErrors { code } } }"""
RESUME = """mutation($input: PatrolTimeInput!) { patrolResume(input: $input) { userErrors { code } } }"""
M_PER_DEG_LAT = 110_852.4  # near 30°N, as in test_track.py
M_PER_DEG_LON = 96_486.3


def eastward(
    n: int, rng: random.Random, *, wobble_m: float = 15.0, jitter_m: float = 0.0, stop: range = range(0)
) -> list[dict]:
    """A 1 Hz walk east at 1.5-2.3 m/s meandering `wobble_m` sideways (a 250 m wave), standing still
    (fixes jittering by `jitter_m`) during the seconds in `stop`; seq is the second."""
    points, s = [], 0.0
    for i in range(n):
        north = wobble_m * math.sin(2 * math.pi * s / 250.0) + rng.gauss(0, jitter_m)
        east = s + rng.gauss(0, jitter_m)
        t = T0 + timedelta(seconds=i)
        points.append({"seq": i, "t": t.isoformat(), "latitude": 30.0 + north / M_PER_DEG_LAT,
                       "longitude": 114.0 + east / M_PER_DEG_LON, "accuracy": 5.0})  # fmt: skip
        if i not in stop:
            s += rng.uniform(1.5, 2.3)
    return points


async def _recorded(client, city, batches: list[list[dict]], client_id: str = "m1") -> tuple[str, dict]:
    token = city["tokens"]["chief.village"]
    patrol = (await start(client, city, client_id=client_id))["patrol"]
    for batch in batches:
        for i in range(0, len(batch), 1000):
            assert (await append(client, token, patrol["id"], batch[i : i + 1000]))["userErrors"] == []
    last = max(datetime.fromisoformat(p["t"]) for batch in batches for p in batch)
    assert (await finish(client, token, patrol["id"], last))["userErrors"] == []
    return patrol["id"], (await gql_data(client, FIGURES, {"id": patrol["id"]}, token=token))["node"]


def flags(node: dict) -> set[str]:
    return {f["flag"] for f in node["authenticity"]["findings"]}


async def test_a_ten_minute_stop_is_pause_time_not_a_gap_or_moving(client, city):
    points = eastward(1800, random.Random(1), jitter_m=2.0, stop=range(600, 1200))
    _, node = await _recorded(client, city, [points])
    m = node["metrics"]
    assert m["pauseTimeS"] == pytest.approx(600, abs=30)
    assert m["gapTimeS"] == 0
    assert m["movingTimeS"] == pytest.approx(1200, abs=30)
    assert m["movingTimeS"] + m["pauseTimeS"] + m["gapTimeS"] == pytest.approx(m["durationS"])
    assert not node["authenticity"]["suspicious"]
    # The stop splits the walk: each side is measured on its own, over about 1.1 km.
    assert m["straightness"]["stretches"] == 2 and m["straightness"]["value"] < 0.98


async def test_a_recorded_fifteen_minute_pause_is_neither_a_gap_nor_longer_moving_than_duration(client, city):
    token = city["tokens"]["chief.village"]
    rng = random.Random(2)
    walked = eastward(2700, rng)
    before, after = walked[:900], walked[1800:]  # the phone records nothing while paused
    patrol = (await start(client, city, client_id="m2"))["patrol"]
    for batch, mutation, at in ((before, PAUSE, 900), (after, RESUME, 1800)):
        assert (await append(client, token, patrol["id"], batch))["userErrors"] == []
        answer = await gql_data(client, mutation, {"input": {"patrolId": patrol["id"],
                                "at": (T0 + timedelta(seconds=at)).isoformat()}}, token=token)  # fmt: skip
        assert next(iter(answer.values()))["userErrors"] == []
    finished = await finish(client, token, patrol["id"], T0 + timedelta(seconds=2699))
    assert finished["userErrors"] == [], finished
    node = (await gql_data(client, FIGURES, {"id": patrol["id"]}, token=token))["node"]
    m = node["metrics"]
    assert not node["authenticity"]["suspicious"], node["authenticity"]
    assert m["gapTimeS"] == 0 and m["pauseTimeS"] == pytest.approx(900, abs=30)
    assert m["durationS"] == pytest.approx(1799) and m["movingTimeS"] <= m["durationS"]


async def test_a_batch_missing_does_not_make_a_walk_too_straight(client, city):
    points = eastward(3000, random.Random(3))
    first, middle, last = points[:700], points[700:2300], points[2300:]
    patrol_id, partial = await _recorded(client, city, [first, last])
    m = partial["metrics"]
    # Measured as one line, the chord across the missing batch made the walk look drawn (old rule).
    chord = haversine(
        first[0]["latitude"], first[0]["longitude"], last[-1]["latitude"], last[-1]["longitude"]
    )
    assert chord / m["distanceM"] >= 0.98
    assert "TOO_STRAIGHT" not in flags(partial) and "LONG_GAPS" in flags(partial)
    assert m["straightness"]["stretches"] == 2 and m["straightness"]["value"] < 0.98
    assert m["straightness"]["measuredM"] < m["distanceM"] - 2500  # the chord is not measured
    assert 1300 <= m["straightness"]["pointCount"] <= 1400
    assert m["gapTimeS"] == pytest.approx(1601)

    token = city["tokens"]["chief.village"]
    for batch in (middle[:800], middle[800:]):  # the missing batches arrive after the finish
        assert (await append(client, token, patrol_id, batch))["userErrors"] == []
    whole = (await gql_data(client, FIGURES, {"id": patrol_id}, token=token))["node"]
    assert not whole["authenticity"]["suspicious"]
    assert whole["metrics"]["straightness"]["stretches"] == 1
    assert whole["metrics"]["straightness"]["measuredM"] == pytest.approx(
        whole["metrics"]["distanceM"], rel=0.01
    )


async def test_a_ruler_straight_drawn_track_is_still_flagged(client, city):
    drawn = [{"seq": i, "t": (T0 + timedelta(seconds=i)).isoformat(), "latitude": 30.0,
              "longitude": 114.0 + i * 1.3 / M_PER_DEG_LON, "accuracy": 5.0} for i in range(1500)]  # fmt: skip
    _, node = await _recorded(client, city, [drawn])
    assert {"TOO_STRAIGHT", "TOO_REGULAR"} <= flags(node)
    straightness, regularity = node["metrics"]["straightness"], node["metrics"]["regularity"]
    assert straightness["value"] > 0.999 and straightness["stretches"] == 1
    assert straightness["measuredM"] == pytest.approx(1.3 * 1499, rel=0.01)
    assert regularity["intervalVariation"] == 0 and regularity["speedVariation"] < 0.02
    reason = next(f["reason"] for f in node["authenticity"]["findings"] if f["flag"] == "TOO_STRAIGHT")
    assert reason.endswith("over 1.9 km of moving track in 1 stretch)")


async def test_raw_distance_counts_the_jitter_the_used_distance_smooths_away(client, city):
    rng = random.Random(4)
    truth = eastward(1200, random.Random(4), wobble_m=0.0)
    jittery = eastward(1200, rng, wobble_m=0.0, jitter_m=3.0)
    _, node = await _recorded(client, city, [jittery])
    m = node["metrics"]
    length = haversine(
        truth[0]["latitude"], truth[0]["longitude"], truth[-1]["latitude"], truth[-1]["longitude"]
    )
    assert m["distanceM"] == pytest.approx(length, rel=0.03)
    assert m["rawDistanceM"] >= m["distanceM"] * 1.2
