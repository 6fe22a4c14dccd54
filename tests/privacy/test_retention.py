"""Retention (issue 15, item 4): a seeded history older than the periods and recent activity; one run
leaves nothing past its period holding personal data, recent data untouched, the statistics and the
case log identical; a run stopped midway and run again ends as one full run, anonymizing nothing twice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.models import AccessRecord, OtpChallenge, RefreshToken, Session, User
from kernel import clock
from kernel.retention import DataKind, RetentionPolicy, RetentionPolicyError, load_policy, parse_policy
from media.intake import original_key
from media.models import Photo
from media.storage import LocalStorage
from patrols.models import Patrol, TrackPoint
from reports.models import Case, CaseEvent, Report
from reports.retention import RETIRED_REPORTER_USERNAME
from server.retention import run_retention
from server.settings import Settings
from tests.graphql_client import gql_data
from tests.media.phone import auth, jpeg, upload_simple
from tests.patrols.test_patrols_api import append, finish, start, walk
from tests.reports.helpers import db_id, demo_sign_in, new_photo, report_input, resident, submit_ok

pytestmark = pytest.mark.usefixtures("demo")

OLD = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, far past every period of the test policy
PERIOD = timedelta(days=60)
POLICY = RetentionPolicy({kind: PERIOD for kind in DataKind}, batch_size=2)

TRANSITION = """mutation($input: CaseTransitionInput!) { caseTransition(input: $input) {
  case { id status version } userErrors { code field message } } }"""
RATE = """mutation($input: CaseRateInput!) { caseRate(input: $input) { userErrors { code } } }"""
STATISTICS = """query($input: CaseStatisticsInput!) { caseStatistics(input: $input) {
  total received accepted returned resolved closed reopened responses onTimeAcceptanceRate resolutions
  onTimeResolutionRate handlingHoursMedian handlingHoursP90 ratings satisfactionRate overdueNow
  department { code } } }"""


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


async def act(client: httpx.AsyncClient, token: str, case_id: str, action: str, **extra: Any) -> dict:
    data = await gql_data(
        client, TRANSITION, {"input": {"caseId": case_id, "action": action, **extra}}, token
    )
    assert data["caseTransition"]["userErrors"] == [], data
    return data["caseTransition"]["case"]


@dataclass
class History:
    old_case: int
    old_reports: list[int]
    old_photo: int
    recent_case: int
    recent_report: int
    recent_photo: int
    old_patrol: int
    inactive_user: int
    active_user: int


async def close_case(client: httpx.AsyncClient, citizen: str, case_id: str, when: datetime) -> None:
    staff = await demo_sign_in(client, "eco.staff")
    dispatcher = await demo_sign_in(client, "dispatcher")
    at(when + timedelta(hours=1))
    case = await act(client, staff, case_id, "ACCEPT")
    case = await act(client, staff, case_id, "START", expectedVersion=case["version"])
    staff_id = db_id((await gql_data(client, "{ me { id } }", token=staff))["me"]["id"])
    at(when + timedelta(days=1))
    await act(
        client,
        staff,
        case_id,
        "RESOLVE",
        note="Silencer fitted by Mr Wang",
        photoIds=[await new_photo(staff_id)],
    )
    dispatcher_id = db_id((await gql_data(client, "{ me { id } }", token=dispatcher))["me"]["id"])
    await act(client, dispatcher, case_id, "VERIFY_PASS", photoIds=[await new_photo(dispatcher_id)])
    case = await act(client, citizen, case_id, "CONFIRM")
    assert case["status"] == "CLOSED"
    rated = await gql_data(
        client, RATE, {"input": {"caseId": case_id, "rating": 4, "comment": "ok"}}, citizen
    )
    assert rated["caseRate"]["userErrors"] == []


async def seed(
    client: httpx.AsyncClient, settings: Settings, access_log_written: Callable[[], Awaitable[None]]
) -> History:
    # The old history: a closed case with two reporters and an EXIF photo, read by a dispatcher.
    at(OLD)
    citizen, citizen_id = await resident(client)
    other, other_id = await resident(client)
    photo = (await upload_simple(client, citizen, jpeg()))["photo"]
    first = await submit_ok(
        client,
        citizen,
        report_input(
            "noise.industrial",
            description="Factory behind my flat at No. 12",
            contactConsent=True,
            photoIds=[photo["id"]],
        ),
    )
    case_id = first["case"]["id"]
    second = await submit_ok(
        client, other, report_input("noise.industrial", description="Me too, call 13912345678")
    )
    assert second["case"]["id"] == case_id
    dispatcher = await demo_sign_in(client, "dispatcher")
    photo_id = db_id(photo["id"])
    assert (
        await client.get(f"/media/photos/{photo_id}/original", headers=auth(dispatcher))
    ).status_code == 200
    await close_case(client, citizen, case_id, OLD)

    # A chief's finished patrol with its track.
    chief = await demo_sign_in(client, "chief.village")
    areas = await gql_data(client, "{ patrolAreas(first: 10) { nodes { id code geometry } } }")
    area = next(a for a in areas["patrolAreas"]["nodes"] if a["code"] == "R-QH-01")
    city = {"tokens": {"chief.village": chief}, "areas": {"R-QH-01": area}}
    at(OLD + timedelta(days=2, minutes=10))
    patrol = (await start(client, city, started=OLD + timedelta(days=2)))["patrol"]
    points = walk(area["geometry"]["coordinates"], 60, random.Random(5), t0=OLD + timedelta(days=2))
    await append(client, chief, patrol["id"], points)
    await finish(client, chief, patrol["id"], OLD + timedelta(days=2, seconds=59))

    # Recent activity: a report with a photo by a resident who signs in now.
    now = datetime.now(UTC)
    at(now - timedelta(days=1))
    active, active_id = await resident(client)
    recent_photo = (await upload_simple(client, active, jpeg(seed=41)))["photo"]
    recent = await submit_ok(
        client,
        active,
        report_input("noise.neighbour", description="Dog barking", photoIds=[recent_photo["id"]]),
    )
    await User.filter(id__in=[citizen_id, active_id]).update(phone_verified_at=OLD)
    await User.filter(id=citizen_id).update(phone="+8613900000001")
    await User.filter(id=active_id).update(phone="+8613900000002")

    # What the database stamps itself (creation times) is set back to the old history's time.
    old_users = [citizen_id, other_id]
    await User.filter(id__in=old_users).update(created_at=OLD)
    await Session.filter(user_id__in=old_users).update(created_at=OLD)
    await RefreshToken.filter(session__user_id__in=old_users).update(created_at=OLD)
    await Photo.filter(id=photo_id).update(created_at=OLD)
    await OtpChallenge.create(phone="+8613900000001", code_hash="x", user_id=citizen_id, expires_at=OLD)
    await OtpChallenge.filter(user_id=citizen_id).update(created_at=OLD)
    await access_log_written()  # the dispatcher's old read, with its old time, before any run
    assert await AccessRecord.filter(at__lt=OLD + timedelta(days=30)).exists()
    reports = sorted(r.id for r in await Report.filter(case_id=db_id(case_id)))
    return History(
        old_case=db_id(case_id),
        old_reports=reports,
        old_photo=photo_id,
        recent_case=db_id(recent["case"]["id"]),
        recent_report=db_id(recent["report"]["id"]),
        recent_photo=db_id(recent_photo["id"]),
        old_patrol=db_id(patrol["id"]),
        inactive_user=citizen_id,
        active_user=active_id,
    )


async def statistics(client: httpx.AsyncClient) -> Any:
    dispatcher = await demo_sign_in(client, "dispatcher")
    variables = {"input": {"from": "2026-01-01", "to": "2027-01-01", "groupBy": ["DEPARTMENT", "CATEGORY"]}}
    return (await gql_data(client, STATISTICS, variables, dispatcher))["caseStatistics"]


async def events() -> list[dict[str, Any]]:
    return list(await CaseEvent.all().order_by("id").values())


async def snapshot() -> dict[str, Any]:
    return {
        "reports": list(await Report.all().order_by("id").values()),
        "cases": list(await Case.all().order_by("id").values()),
        "photos": list(await Photo.all().order_by("id").values()),
        "patrols": list(await Patrol.all().order_by("id").values("id", "track_removed_at")),
        "users": list(await User.all().order_by("id").values("id", "phone", "phone_removed_at")),
        "points": await TrackPoint.all().count(),
        "access": await AccessRecord.all().count(),
    }


def storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.media_root)


async def assert_nothing_personal_past_its_period(h: History, settings: Settings) -> None:
    retired = await User.get(username=RETIRED_REPORTER_USERNAME)
    assert not retired.is_active and retired.phone is None and retired.password_hash is None
    case = await Case.get(id=h.old_case)
    for report in await Report.filter(id__in=h.old_reports):
        assert report.anonymized_at is not None
        assert report.reporter_id == retired.id and report.anonymous and not report.contact_consent
        assert report.description == "" and report.evidence == {} and report.accuracy_m is None
        assert (report.latitude, report.longitude) == (case.public_latitude, case.public_longitude)
        assert (report.original_latitude, report.original_longitude) == (
            case.public_latitude,
            case.public_longitude,
        )
        assert report.client_id == f"retired-{report.id}"
    assert case.anonymized_at is not None and case.summary == "" and case.resolution_note == ""
    assert (case.latitude, case.longitude) == (case.public_latitude, case.public_longitude)
    photo = await Photo.get(id=h.old_photo)
    assert photo.exif_latitude is None and photo.exif_longitude is None and photo.camera_make is None
    assert photo.original_removed_at is not None and photo.original_file_removed_at is not None
    assert not await storage(settings).exists(original_key(photo))
    assert await TrackPoint.filter(patrol_id=h.old_patrol).count() == 0
    patrol = await Patrol.get(id=h.old_patrol)
    assert patrol.track_removed_at is not None and patrol.distance_m  # the metrics stay
    user = await User.get(id=h.inactive_user)
    assert user.phone is None and user.phone_verified_at is None and user.phone_removed_at is not None
    assert not await AccessRecord.filter(at__lt=datetime.now(UTC) - PERIOD).exists()
    assert not await OtpChallenge.filter(user_id=h.inactive_user).exists()


async def assert_recent_untouched(h: History, settings: Settings) -> None:
    report = await Report.get(id=h.recent_report)
    assert report.anonymized_at is None and report.reporter_id == h.active_user
    assert report.description == "Dog barking"
    assert (await Case.get(id=h.recent_case)).anonymized_at is None
    photo = await Photo.get(id=h.recent_photo)
    assert photo.exif_latitude is not None and photo.original_removed_at is None
    assert await storage(settings).exists(original_key(photo))
    assert (await User.get(id=h.active_user)).phone == "+8613900000002"


async def test_a_run_leaves_no_personal_data_past_its_period_and_the_statistics_unchanged(
    client, settings, access_log_written
):
    h = await seed(client, settings, access_log_written)
    stats_before, events_before = await statistics(client), await events()
    assert (await Report.get(id=h.old_reports[0])).description  # personal data there before the run

    at(datetime.now(UTC))
    tally = await run_retention(POLICY, storage(settings))
    assert tally.complete and tally.rows[DataKind.REPORT_PERSONAL] == 2 and tally.files == 1

    await assert_nothing_personal_past_its_period(h, settings)
    await assert_recent_untouched(h, settings)
    assert await statistics(client) == stats_before
    assert await events() == events_before  # the case log: same rows, same content

    # The staff see a case without its reporters' words or a served original.
    dispatcher = await demo_sign_in(client, "dispatcher")
    gone = await client.get(f"/media/photos/{h.old_photo}/original", headers=auth(dispatcher))
    assert gone.status_code == 404
    kept = await client.get(f"/media/photos/{h.recent_photo}/original", headers=auth(dispatcher))
    assert kept.status_code == 200

    # A second run finds nothing to do and changes nothing.
    await access_log_written()  # the reads just above, so the snapshots count the same records
    done = await snapshot()
    again = await run_retention(POLICY, storage(settings))
    assert again.rows == {} or set(again.rows.values()) == {0}
    assert await snapshot() == done


class DiesOnDelete(LocalStorage):
    """The process dies just after a batch committed, before its files were removed."""

    async def delete(self, key: str) -> bool:
        raise SystemExit("killed")


async def test_a_run_stopped_midway_and_run_again_ends_as_one_full_run(client, settings, access_log_written):
    h = await seed(client, settings, access_log_written)
    stats_before, events_before = await statistics(client), await events()
    at(datetime.now(UTC))

    first = await run_retention(POLICY, storage(settings), max_batches=1)
    assert not first.complete and first.batches == 1
    # One whole batch (two reports, with every personal field), nothing else.
    marked = await Report.filter(anonymized_at__isnull=False).order_by("id")
    assert [r.id for r in marked] == h.old_reports[:2]
    assert all(r.description == "" for r in marked)
    assert not await Case.filter(anonymized_at__isnull=False).exists()
    stamps = {r.id: r.anonymized_at for r in marked}

    # Killed after the originals' batch committed, before the file went.
    with pytest.raises(SystemExit):
        await run_retention(POLICY, DiesOnDelete(settings.media_root))
    photo = await Photo.get(id=h.old_photo)
    assert photo.original_removed_at is not None and photo.original_file_removed_at is None
    assert await storage(settings).exists(original_key(photo))

    at(datetime.now(UTC) + timedelta(minutes=5))
    await run_retention(POLICY, storage(settings))
    await assert_nothing_personal_past_its_period(h, settings)
    await assert_recent_untouched(h, settings)
    # Nothing anonymized twice: the first run's marks stand.
    for report in await Report.filter(id__in=list(stamps)):
        assert report.anonymized_at == stamps[report.id]
    assert (await Photo.get(id=h.old_photo)).original_removed_at == photo.original_removed_at
    assert await statistics(client) == stats_before
    assert await events() == events_before


def test_the_policy_file_is_validated_when_loaded(tmp_path: Path) -> None:
    shipped = load_policy()
    assert set(shipped.periods) == set(DataKind) and shipped.batch_size > 0
    periods: dict[str, Any] = {kind.value: 30 for kind in DataKind}
    good: dict[str, Any] = {"periods_days": periods}
    assert parse_policy(good).periods[DataKind.ACCESS_LOG] == timedelta(days=30)
    bad: Any
    for bad in (
        {"periods_days": {**periods, "photo_exif": 0}},
        {"periods_days": {**periods, "photo_exif": "1y"}},
        {"periods_days": {k: v for k, v in periods.items() if k != "access_log"}},
        {"periods_days": {**periods, "typo": 3}},
        {**good, "batch_size": 0},
        {**good, "extra": 1},
        [],
    ):
        with pytest.raises(RetentionPolicyError):
            parse_policy(bad)
    broken = tmp_path / "retention.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(RetentionPolicyError, match="not valid JSON"):
        load_policy(broken)


async def test_two_runs_at_once_anonymize_each_row_once(client, settings, access_log_written):
    h = await seed(client, settings, access_log_written)
    events_before = await events()
    at(datetime.now(UTC))
    one, two = await asyncio.gather(
        run_retention(POLICY, storage(settings)), run_retention(POLICY, storage(settings))
    )
    # Both went over the same rows; each row's conditional update matched in one of them only.
    for kind, expected in ((DataKind.REPORT_PERSONAL, 2), (DataKind.CLOSED_CASE_PERSONAL, 1)):
        assert one.rows.get(kind, 0) + two.rows.get(kind, 0) == expected
    await assert_nothing_personal_past_its_period(h, settings)
    await assert_recent_untouched(h, settings)
    assert await events() == events_before
