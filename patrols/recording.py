"""Recording a patrol from an offline phone: start, track batches, pause/resume, observations, finish.

Every call may be retried: starting and observing are create-once by client id, a batch of points
sent twice or overlapping stores each point once, and finishing twice answers the same. Points are
accepted at any time, also after the finish; the metrics are then computed again.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio
from tortoise.expressions import Q

from identity.models import Role, User
from kernel import city, clock, outbox
from kernel import metrics as counters
from kernel.database import atomic
from kernel.errors import DomainError, DomainErrors, ErrorCode, forbidden, invalid, not_found
from kernel.geo import CoordinateSystem, to_wgs84, validate_lat_lon
from kernel.idempotency import create_once, fingerprint
from media.service import claim_photos
from patrols import metrics
from patrols.catalog import observation_category
from patrols.gpx import ParsedPoint, parse_gpx
from patrols.models import (
    ChiefAssignment,
    Delegation,
    Observation,
    Patrol,
    PatrolArea,
    PatrolStatus,
    TrackPoint,
    VolunteerEnrollment,
)
from patrols.track import PatrolMode

MAX_BATCH = 1_000
MAX_POINTS_PER_PATROL = 100_000  # a day at 1 Hz, with room
MAX_CLIENT_ID = 64
MAX_NOTE = 2_000
# A phone may start a patrol offline and upload it much later, but not from the far past or future.
MAX_BACKDATE = timedelta(days=60)
MAX_AHEAD = timedelta(days=1)

Ranges = list[list[int]]


# --- held sequence numbers, as compact ranges -------------------------------------------------------


def ranges_contain(ranges: Ranges, seq: int) -> bool:
    i = bisect.bisect_right(ranges, [seq, float("inf")]) - 1
    return i >= 0 and ranges[i][0] <= seq <= ranges[i][1]


def ranges_add(ranges: Ranges, seqs: Sequence[int]) -> Ranges:
    """`ranges` (sorted, disjoint, non-adjacent) with `seqs` added, in the same normal form."""
    merged: Ranges = []
    for first, last in sorted([*map(list, ranges), *([s, s] for s in seqs)]):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


def ranges_size(ranges: Ranges) -> int:
    return sum(last - first + 1 for first, last in ranges)


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointIn:
    seq: int
    t: datetime
    lat: float
    lon: float
    crs: CoordinateSystem = CoordinateSystem.WGS84
    accuracy_m: float | None = None
    speed_mps: float | None = None
    mock: bool = False


def _aware(value: datetime, *field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise invalid("Times need a UTC offset, e.g. 2026-05-01T08:00:00+08:00.", *field)
    return value


def _client_id(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_CLIENT_ID:
        raise invalid(f"clientId must be 1-{MAX_CLIENT_ID} characters.", "input", "clientId")
    return value


def _not_from_the_future(value: datetime, now: datetime, *field: str) -> datetime:
    if value > now + MAX_AHEAD:
        raise invalid("This time is more than a day ahead of the server clock.", *field)
    return value


def _skew(sent_at: datetime | None, now: datetime) -> float | None:
    return None if sent_at is None else (now - _aware(sent_at, "input", "sentAt")).total_seconds()


def local_date(t: datetime) -> date:
    """The date of `t` in the city (kernel.city)."""
    return city.current().local_date(t)


# --- start ----------------------------------------------------------------------------------------


async def counted_for(user: User, area_id: int, day: date) -> int:
    """The chief a patrol of `area_id` by `user` on `day` counts for: the user when assigned to the
    area then, else the chief who delegated patrolling to them for that day. FORBIDDEN otherwise.
    A social supervisor's patrol counts for themselves, when enrolled in the area that day."""
    in_force = Q(valid_from__lte=day) & (Q(valid_to=None) | Q(valid_to__gte=day))
    if user.role == Role.VOLUNTEER:
        if await VolunteerEnrollment.filter(in_force, volunteer_id=user.id, area_id=area_id).exists():
            return user.id
        raise forbidden(f"You are not enrolled as a social supervisor of this area on {day}.")
    if await ChiefAssignment.filter(in_force, chief_id=user.id, area_id=area_id).exists():
        return user.id
    delegations = Delegation.filter(assistant_id=user.id, valid_from__lte=day, valid_to__gte=day)
    chiefs = [chief_id for (chief_id,) in await delegations.values_list("chief_id")]
    if chiefs:
        assigned = (
            await ChiefAssignment.filter(in_force, chief_id__in=chiefs, area_id=area_id)
            .order_by("id")
            .values_list("chief_id")
        )
        if assigned:
            return int(assigned[0][0])
    raise forbidden(f"You are not assigned to this area on {day}, nor delegated by a chief who is.")


async def start_patrol(
    user: User,
    *,
    client_id: str,
    area_id: int,
    mode: PatrolMode,
    started_at: datetime,
    sent_at: datetime | None = None,
) -> Patrol:
    client_id = _client_id(client_id)
    now = clock.now()
    started_at = _not_from_the_future(_aware(started_at, "input", "startedAt"), now, "input", "startedAt")
    if started_at < now - MAX_BACKDATE:
        raise invalid(
            f"A patrol can be uploaded up to {MAX_BACKDATE.days} days after it started.", "input", "startedAt"
        )
    print_ = fingerprint({"area": area_id, "mode": mode.value, "started_at": started_at.isoformat()})
    existing = await Patrol.get_or_none(chief_id=user.id, client_id=client_id)
    if existing is None:  # permission is checked once, when the patrol is first created
        if not await PatrolArea.exists(id=area_id):
            raise not_found("patrol area", "input", "areaId")
        chief_id = await counted_for(user, area_id, local_date(started_at))
    else:
        chief_id = existing.counted_for_id

    async def create() -> Patrol:
        return await Patrol.create(
            client_id=client_id,
            fingerprint=print_,
            chief_id=user.id,
            counted_for_id=chief_id,
            by_volunteer=user.role == Role.VOLUNTEER,
            area_id=area_id,
            mode=mode,
            started_at=started_at,
            started_received_at=now,
            clock_skew_s=_skew(sent_at, now),
        )

    patrol, _ = await create_once(
        Patrol,
        lookup={"chief_id": user.id, "client_id": client_id},
        content_fingerprint=print_,
        create=create,
    )
    return patrol


async def own_patrol(user: User, patrol_id: int, *, for_update: bool = False) -> Patrol:
    """A patrol the caller recorded; any other is NOT_FOUND (only the recording phone uploads)."""
    query = Patrol.filter(id=patrol_id, chief_id=user.id)
    if for_update:
        query = query.select_for_update()
    patrol = await query.first()
    if patrol is None:
        raise not_found("patrol", "input", "patrolId")
    return patrol


# --- track batches --------------------------------------------------------------------------------


@dataclass(slots=True)
class AppendResult:
    patrol: Patrol
    stored: int = 0  # new points stored by this call
    duplicates: int = 0  # points the server already held, identical
    errors: list[DomainError] = field(default_factory=list)  # per point: CONFLICT or INVALID


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def points_from_rows(rows: Any, crs: CoordinateSystem) -> list[PointIn | DomainError]:
    """Read the compact batch form `[[seq, epochMillis, lat, lon, accuracy?, speed?, mock?], ...]`.

    It carries the same data as a list of point objects at a fraction of the parsing cost, which is
    what makes a phone's catch-up upload fast. A row that cannot be read becomes its error, in place.
    """
    if not isinstance(rows, list):
        raise invalid(
            "rows must be a list of [seq, epochMillis, lat, lon, accuracy, speed, mock].", "input", "rows"
        )
    out: list[PointIn | DomainError] = []
    for i, row in enumerate(rows):
        if (
            not isinstance(row, list)
            or not 4 <= len(row) <= 7
            or not isinstance(row[0], int)
            or not all(_finite(v) for v in row[1:4])
            or not all(v is None or _finite(v) for v in row[4:6])
            or (len(row) == 7 and not isinstance(row[6], bool | int))
        ):
            out.append(
                invalid(
                    "Expected [seq, epochMillis, lat, lon, accuracy?, speed?, mock?].",
                    "input",
                    "rows",
                    str(i),
                )
            )
            continue
        extra = [*row[4:], None, None, False][:3]
        try:
            t = datetime.fromtimestamp(row[1] / 1000.0, UTC)
        except (OverflowError, OSError, ValueError):
            out.append(invalid("epochMillis is out of range.", "input", "rows", str(i)))
            continue
        out.append(PointIn(row[0], t, float(row[2]), float(row[3]), crs, extra[0], extra[1], bool(extra[2])))
    return out


def _check_point(point: PointIn, index: int, now: datetime, name: str) -> DomainError | None:
    where = ("input", name, str(index))
    if not 0 <= point.seq < 2**31:
        return invalid(f"seq must be 0 to {2**31 - 1}.", *where, "seq")
    if point.t.tzinfo is None or point.t.utcoffset() is None:
        return invalid("t needs a UTC offset.", *where, "t")
    if point.t > now + MAX_AHEAD:
        return invalid("t is more than a day ahead of the server clock.", *where, "t")
    if point.accuracy_m is not None and point.accuracy_m < 0:
        return invalid("accuracy must not be negative.", *where, "accuracy")
    return None


def _same_point(point: PointIn, stored: tuple) -> bool:
    t, lat, lon, orig_lat, orig_lon, crs = stored
    sent = (point.lat, point.lon) if crs == point.crs else None
    held = (orig_lat, orig_lon) if orig_lat is not None else (lat, lon)
    return t == point.t and sent == held


_POINT_COLUMNS = ("patrol_id", "seq", "t", "lat", "lon", "orig_lat", "orig_lon", "crs", "accuracy_m",
                  "speed_mps", "mock")  # fmt: skip


def _values(patrol_id: int, point: PointIn) -> list[Any]:
    converted = point.crs is not CoordinateSystem.WGS84
    lat, lon = to_wgs84(point.lat, point.lon, point.crs) if converted else (point.lat, point.lon)
    return [
        patrol_id, point.seq, point.t.astimezone(UTC), lat, lon, point.lat if converted else None,
        point.lon if converted else None, point.crs.value, point.accuracy_m, point.speed_mps, point.mock,
    ]  # fmt: skip


async def _insert_new(patrol_id: int, points: Sequence[PointIn]) -> None:
    """Insert points, skipping any (patrol, seq) already stored.

    One prepared multi-row statement (`INSERT OR IGNORE` / `ON CONFLICT DO NOTHING`): building ORM
    objects cost more than the database work, and ingest speed is what lets a phone catch up.
    """
    conn = TrackPoint._meta.db
    rows = [_values(patrol_id, p) for p in points]
    columns = ", ".join(f'"{c}"' for c in _POINT_COLUMNS)
    dialect = conn.capabilities.dialect
    if dialect == "sqlite":
        marks = ", ".join("?" * len(_POINT_COLUMNS))
        await conn.execute_many(f'INSERT OR IGNORE INTO "track_points" ({columns}) VALUES ({marks})', rows)
    elif dialect == "postgres":
        marks = ", ".join(f"${i + 1}" for i in range(len(_POINT_COLUMNS)))
        await conn.execute_many(
            f'INSERT INTO "track_points" ({columns}) VALUES ({marks})'
            ' ON CONFLICT ("patrol_id", "seq") DO NOTHING',
            rows,
        )
    else:
        objects = [TrackPoint(**dict(zip(_POINT_COLUMNS, row, strict=True))) for row in rows]
        await TrackPoint.bulk_create(objects, ignore_conflicts=True)


async def append_points(
    user: User,
    patrol_id: int,
    points: Sequence[PointIn | DomainError],
    *,
    sent_at: datetime | None = None,
    input_name: str = "points",
) -> AppendResult:
    """Store a batch of track points once each; refuse, per point, a repeated seq with other data.

    New sequence numbers are bulk-inserted with conflicts ignored; only seqs the server already held
    are read back and compared. The patrol row is locked meanwhile (PostgreSQL; SQLite serialises
    writers anyway), so concurrent batches keep `held_ranges` and the point count exact.
    """
    if not 1 <= len(points) <= MAX_BATCH:
        raise invalid(f"Send 1 to {MAX_BATCH} points per batch.", "input", input_name)
    now = clock.now()
    async with atomic():
        patrol = await own_patrol(user, patrol_id, for_update=True)
        result = AppendResult(patrol)
        fresh: dict[int, tuple[int, PointIn]] = {}
        repeated: dict[int, list[tuple[int, PointIn]]] = {}
        held = patrol.held_ranges
        for index, point in enumerate(points):
            if isinstance(point, DomainError):
                result.errors.append(point)
            elif (error := _check_point(point, index, now, input_name)) is not None:
                result.errors.append(error)
            elif ranges_contain(held, point.seq):
                repeated.setdefault(point.seq, []).append((index, point))
            elif point.seq in fresh:
                first = fresh[point.seq][1]
                if first.t == point.t and (first.lat, first.lon, first.crs) == (
                    point.lat,
                    point.lon,
                    point.crs,
                ):
                    result.duplicates += 1
                else:
                    result.errors.append(_seq_conflict(index, point.seq, input_name))
            else:
                fresh[point.seq] = (index, point)
        if patrol.point_count + len(fresh) > MAX_POINTS_PER_PATROL:
            raise invalid(f"A patrol holds at most {MAX_POINTS_PER_PATROL} points.", "input", input_name)
        if repeated:
            stored = {
                row[0]: row[1:]
                for row in await TrackPoint.filter(patrol_id=patrol.id, seq__in=list(repeated)).values_list(
                    "seq", "t", "lat", "lon", "orig_lat", "orig_lon", "crs"
                )
            }
            for seq, tries in repeated.items():
                for index, point in tries:
                    if _same_point(point, stored[seq]):
                        result.duplicates += 1
                    else:
                        result.errors.append(_seq_conflict(index, seq, input_name))
        if fresh:
            await _insert_new(patrol.id, [p for _, p in fresh.values()])
            result.stored = len(fresh)
            patrol.held_ranges = ranges_add(held, list(fresh))
            patrol.point_count += len(fresh)
            patrol.last_upload_at = now
        skew = _skew(sent_at, now)
        if skew is not None:
            patrol.clock_skew_s = skew
        if fresh or skew is not None:
            await patrol.save(update_fields=["held_ranges", "point_count", "last_upload_at", "clock_skew_s"])
    counters.track_batches.inc()
    counters.track_points.labels("stored").inc(result.stored)
    counters.track_points.labels("duplicate").inc(result.duplicates)
    counters.track_points.labels("refused").inc(len(result.errors))
    if fresh and patrol.status is PatrolStatus.FINISHED:
        await metrics.recompute(patrol)
    result.errors.sort(key=lambda e: int(e.field[2]) if e.field else 0)
    return result


def _seq_conflict(index: int, seq: int, input_name: str) -> DomainError:
    return DomainError(
        ErrorCode.CONFLICT,
        f"Point {seq} was already received with other time or coordinates; the first one is kept.",
        ["input", input_name, str(index)],
    )


# --- pause, resume, finish ----------------------------------------------------------------------


def _check_time(patrol: Patrol, at: datetime, name: str) -> datetime:
    at = _not_from_the_future(_aware(at, "input", name), clock.now(), "input", name)
    if at < patrol.started_at:
        raise invalid(f"{name} is before the patrol started.", "input", name)
    return at


async def pause_patrol(user: User, patrol_id: int, at: datetime) -> Patrol:
    async with atomic():
        patrol = await own_patrol(user, patrol_id, for_update=True)
        at = _check_time(patrol, at, "at")
        last = patrol.pauses[-1] if patrol.pauses else None
        if last is not None and last[0] == at.isoformat():
            return patrol  # a retry of this pause
        if patrol.status is not PatrolStatus.RECORDING:
            raise invalid(f"The patrol is {patrol.status.lower()}, not recording.", "input", "patrolId")
        patrol.pauses = [*patrol.pauses, [at.isoformat(), None]]
        patrol.status = PatrolStatus.PAUSED
        await patrol.save(update_fields=["pauses", "status"])
    return patrol


async def resume_patrol(user: User, patrol_id: int, at: datetime) -> Patrol:
    async with atomic():
        patrol = await own_patrol(user, patrol_id, for_update=True)
        at = _check_time(patrol, at, "at")
        last = patrol.pauses[-1] if patrol.pauses else None
        if last is not None and last[1] == at.isoformat():
            return patrol  # a retry of this resume
        if patrol.status is not PatrolStatus.PAUSED or last is None:
            raise invalid(f"The patrol is {patrol.status.lower()}, not paused.", "input", "patrolId")
        if at < metrics.pause_times(last)[0]:
            raise invalid("Resumed before it was paused.", "input", "at")
        patrol.pauses = [*patrol.pauses[:-1], [last[0], at.isoformat()]]
        patrol.status = PatrolStatus.RECORDING
        await patrol.save(update_fields=["pauses", "status"])
    return patrol


async def finish_patrol(
    user: User, patrol_id: int, finished_at: datetime, *, sent_at: datetime | None = None
) -> Patrol:
    """Finish and compute the metrics. Finishing again returns the finished patrol unchanged."""
    now = clock.now()
    async with atomic():
        patrol = await own_patrol(user, patrol_id, for_update=True)
        if patrol.status is PatrolStatus.FINISHED:
            return patrol
        finished_at = _check_time(patrol, finished_at, "finishedAt")
        if patrol.pauses and patrol.pauses[-1][1] is None:
            patrol.pauses = [*patrol.pauses[:-1], [patrol.pauses[-1][0], finished_at.isoformat()]]
        patrol.status = PatrolStatus.FINISHED
        patrol.finished_at = finished_at
        patrol.finished_received_at = now
        skew = _skew(sent_at, now)
        if skew is not None:
            patrol.clock_skew_s = skew
        await patrol.save(
            update_fields=["pauses", "status", "finished_at", "finished_received_at", "clock_skew_s"]
        )
        await outbox.emit(
            outbox.change(
                "patrol_finished", "patrol", patrol.id, [], now, chief=patrol.chief_id, area=patrol.area_id
            )
        )
    await metrics.recompute(patrol)
    return patrol


# --- observations ---------------------------------------------------------------------------------


async def record_observation(
    user: User,
    patrol_id: int,
    *,
    client_id: str,
    category: str,
    note: str,
    lat: float,
    lon: float,
    crs: CoordinateSystem,
    observed_at: datetime,
    photo_ids: Sequence[int],
) -> Observation:
    client_id = _client_id(client_id)
    patrol = await own_patrol(user, patrol_id)
    area = await PatrolArea.get(id=patrol.area_id)
    observation_category(category, area.kind, "input", "category")
    if len(note) > MAX_NOTE:
        raise invalid(f"note is at most {MAX_NOTE} characters.", "input", "note")
    try:
        validate_lat_lon(lat, lon, ("latitude", "longitude"))
    except DomainError as exc:
        raise invalid(exc.message, "input", "location", *(exc.field or [])) from None
    wgs = to_wgs84(lat, lon, crs)
    observed_at = _not_from_the_future(
        _aware(observed_at, "input", "observedAt"), clock.now(), "input", "observedAt"
    )
    print_ = fingerprint(
        {"category": category, "note": note, "lat": lat, "lon": lon, "crs": crs.value,
         "observed_at": observed_at.isoformat(), "photos": list(photo_ids)}
    )  # fmt: skip

    async def create() -> Observation:
        await claim_photos(user.id, photo_ids, field=["input", "photoIds"])
        return await Observation.create(
            client_id=client_id,
            fingerprint=print_,
            patrol_id=patrol.id,
            category=category,
            note=note,
            lat=wgs.lat,
            lon=wgs.lon,
            observed_at=observed_at,
            photo_ids=list(photo_ids),
        )

    observation, _ = await create_once(
        Observation,
        lookup={"patrol_id": patrol.id, "client_id": client_id},
        content_fingerprint=print_,
        create=create,
    )
    return observation


# --- GPX import -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpxImport:
    patrol: Patrol
    imported: int  # points stored
    duplicates: int  # points skipped: same time as an earlier point of the file, or already held


def _gpx_track(data: bytes) -> tuple[list[ParsedPoint], int]:
    """The file's points in time order without repeated times, and how many repeats were dropped.
    A file with more points than a patrol may hold is refused while it is read."""
    parsed = parse_gpx(data, max_points=MAX_POINTS_PER_PATROL)
    unique: dict[datetime, ParsedPoint] = {}
    for p in parsed:
        unique.setdefault(p.t, p)
    ordered = sorted(unique.values(), key=lambda p: p.t)
    return ordered, len(parsed) - len(ordered)


async def import_gpx(user: User, *, client_id: str, area_id: int, mode: PatrolMode, data: bytes) -> GpxImport:
    """A finished patrol from another app's GPX track, all or nothing. Importing the same file again
    with the same client id returns the same patrol with every point counted as a duplicate."""
    # Seconds of CPU for a large file: off the event loop, so other requests keep their latency.
    ordered, skipped = await anyio.to_thread.run_sync(_gpx_track, data)
    points = [PointIn(seq, p.t, p.lat, p.lon) for seq, p in enumerate(ordered)]
    async with atomic():
        patrol = await start_patrol(
            user, client_id=client_id, area_id=area_id, mode=mode, started_at=ordered[0].t
        )
        stored = duplicates = 0
        for i in range(0, len(points), MAX_BATCH):
            result = await append_points(user, patrol.id, points[i : i + MAX_BATCH])
            if result.errors:
                raise DomainErrors(result.errors)
            stored += result.stored
            duplicates += result.duplicates
        patrol = await finish_patrol(user, patrol.id, ordered[-1].t)
    return GpxImport(patrol, stored, skipped + duplicates)
