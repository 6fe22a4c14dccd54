"""Residents' reports: validate, route, group duplicates, and open or join a case, all in one
transaction; plus the read side residents use before and after submitting.

A report is routed by the time the nuisance was observed (night construction noise reported the next
morning is still night construction noise). A case becomes public (on the map, photos' derivatives
served) as soon as a rule routes it; a case in TRIAGE stays private until a dispatcher routes it, so
spam never reaches the map.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q, RawSQL
from tortoise.queryset import QuerySet

from identity.models import User
from kernel import clock
from kernel.errors import DomainError, DomainErrors, ErrorCode, conflict, invalid, not_found
from kernel.geo import BBox, CoordinateSystem, LatLon, bbox_around, haversine_m, to_wgs84, validate_lat_lon
from kernel.idempotency import create_once, fingerprint
from media.service import MAX_PHOTOS_PER_ITEM, claim_photos, set_public
from reports import access
from reports.casework import dispatch_policy, log
from reports.categories import Category
from reports.evidence import validate_evidence
from reports.lifecycle import Action, Status
from reports.models import Case, CaseEvent, Priority, Report, ReportSource
from reports.routing import RoutingDecision
from reports.store import Snapshot, sla_policies, working_calendar

INPUT = ("input",)
MAX_DESCRIPTION = 2000
MAX_ACCURACY_M = 100_000.0
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CLOCK_SKEW = timedelta(minutes=10)
MAX_REPORT_AGE = timedelta(days=365)
REPORT_ADDED = "report_added"
# Statuses in which a case still takes new reports (duplicates join it) and shows up as "nearby".
OPEN_STATUSES = (
    Status.SUBMITTED,
    Status.TRIAGE,
    Status.ROUTED,
    Status.RETURNED,
    Status.ACCEPTED,
    Status.IN_PROGRESS,
    Status.REOPENED,
)
# Public map cell for categories reported at homes: about 200 m, so a complaint never pins a flat.
PUBLIC_GRID_M = 200.0
NEARBY_MAX = 5


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    crs: CoordinateSystem = CoordinateSystem.WGS84
    accuracy_m: float | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    client_id: str
    category_code: str
    location: Location
    description: str = ""
    observed_at: datetime | None = None
    evidence: Any = None
    photo_ids: Sequence[int] = ()
    anonymous: bool = False
    contact_consent: bool = False
    join_case_id: int | None = None
    source: ReportSource = ReportSource.RESIDENT
    origin: Mapping[str, Any] = field(default_factory=dict)
    # Officials' hand-offs: the kind of office whose triage queue takes what no department handles
    # here (e.g. `river_chief_office`), instead of refusing the category as a resident's form does.
    triage_office_kind: str | None = None


@dataclass(slots=True)
class SubmitResult:
    report: Report
    case: Case
    joined_existing_case: bool
    created: bool = True


@dataclass(frozen=True, slots=True)
class _Checked:
    """A submission after validation: what is stored and what the fingerprint covers."""

    category: Category
    category_id: int
    point: LatLon
    description: str
    observed_at: datetime
    evidence: dict[str, Any]
    content: dict[str, Any] = field(repr=False)


def normalize_location(location: Location, *path: str) -> LatLon:
    """The WGS-84 point; NaN, infinities and out-of-range values are refused with their field path."""
    try:
        validate_lat_lon(location.latitude, location.longitude, ("latitude", "longitude"))
    except DomainError as exc:
        raise invalid(exc.message, *path, *(exc.field or ())) from None
    return to_wgs84(location.latitude, location.longitude, location.crs)


def _check_accuracy(value: float | None, *path: str) -> None:
    if value is not None and (not math.isfinite(value) or not 0 <= value <= MAX_ACCURACY_M):
        raise invalid(f"Accuracy must be 0 to {MAX_ACCURACY_M:g} metres.", *path, "accuracyM")


def _collect(errors: list[DomainError], check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except DomainErrors as exc:
        errors.extend(exc.errors)
    except DomainError as exc:
        errors.append(exc)
    return None


def _check(snapshot: Snapshot, sub: Submission, now: datetime) -> _Checked:
    errors: list[DomainError] = []
    if not CLIENT_ID.fullmatch(sub.client_id):
        errors.append(invalid("Use 8 to 64 letters, digits, '-' or '_' (e.g. a UUID).", *INPUT, "clientId"))
    description = sub.description.strip()
    if len(description) > MAX_DESCRIPTION:
        errors.append(invalid(f"At most {MAX_DESCRIPTION} characters.", *INPUT, "description"))
    point = _collect(errors, _checked_point, sub.location)
    observed_at = sub.observed_at or now
    if observed_at.tzinfo is None:
        errors.append(invalid("Give a time zone.", *INPUT, "observedAt"))
    elif not now - MAX_REPORT_AGE <= observed_at <= now + CLOCK_SKEW:
        errors.append(invalid("Must be within the last year and not in the future.", *INPUT, "observedAt"))
    if len(sub.photo_ids) > MAX_PHOTOS_PER_ITEM:
        errors.append(invalid(f"At most {MAX_PHOTOS_PER_ITEM} photos.", *INPUT, "photoIds"))
    category = snapshot.category(sub.category_code)
    evidence: dict[str, Any] | None = None
    if category is None:
        errors.append(invalid("No such category.", *INPUT, "categoryCode"))
    else:
        evidence = _collect(errors, validate_evidence, category.evidence, sub.evidence)
    if errors:
        raise DomainErrors(errors)
    assert category is not None and point is not None and evidence is not None
    loc = sub.location
    content = {
        "category": category.code,
        "description": description,
        "location": [loc.latitude, loc.longitude, loc.crs.value, loc.accuracy_m],
        "observed_at": sub.observed_at.isoformat() if sub.observed_at else None,
        "evidence": evidence,
        "photos": list(sub.photo_ids),
        "anonymous": sub.anonymous,
        "contact_consent": sub.contact_consent,
        "join": sub.join_case_id,
    }
    return _Checked(
        category, snapshot.category_ids[category.code], point, description, observed_at, evidence, content
    )


def _checked_point(location: Location) -> LatLon:
    point = normalize_location(location, *INPUT, "location")
    _check_accuracy(location.accuracy_m, *INPUT, "location")
    return point


def route(
    snapshot: Snapshot,
    category: Category,
    point: LatLon,
    evidence: dict[str, Any],
    at: datetime,
    triage_office_kind: str | None = None,
) -> RoutingDecision:
    """Where a new case goes. Outside every jurisdiction: TRIAGE. Inside, a category nobody handles
    there is refused, so the resident picks one `categoriesAt` offers; with `triage_office_kind` (an
    official's hand-off) it goes to that office's queue instead, or to TRIAGE if there is none."""
    lon_lat = (point.lon, point.lat)
    router = snapshot.router
    if not router.places_at(lon_lat):
        return RoutingDecision(None, None, "outside every jurisdiction this service covers")
    if triage_office_kind is None:
        if not router.handles(lon_lat, category.code):
            raise invalid(
                "No department handles this category here; see categoriesAt.", *INPUT, "categoryCode"
            )
        return router.route(lon_lat, category.code, evidence, at)
    decision = router.route(lon_lat, category.code, evidence, at)
    if not decision.triage:
        return decision
    office = router.department_of_kind(lon_lat, triage_office_kind)
    why = f"{decision.reason}; sent to the {triage_office_kind} triage queue"
    if office is None:
        return RoutingDecision(None, decision.rule_id, f"{why}, but no such office covers this point")
    return RoutingDecision(office, decision.rule_id, f"{why} -> {office}")


async def submit_report(
    snapshot: Snapshot,
    reporter: User,
    sub: Submission,
    *,
    per_hour_limit: int | None,
    ordered: RoutingDecision | None = None,
) -> SubmitResult:
    """Create the report (joining or opening a case) once per client id; a retry returns the first.

    `per_hour_limit=None` skips the submission rate limit (officials handing off patrol findings).
    `ordered`: the department was named by an order (交办, `reports.orders`), not by the routing rules.
    """
    now = clock.now()
    checked = _check(snapshot, sub, now)
    decision = None
    if sub.join_case_id is None:
        decision = ordered or route(
            snapshot,
            checked.category,
            checked.point,
            checked.evidence,
            checked.observed_at,
            sub.triage_office_kind,
        )
    content_print = fingerprint(checked.content)
    opened: list[Case] = []  # the case this call opened, when it did

    async def create() -> Report:
        if per_hour_limit is not None:
            await _check_rate(reporter.id, now, per_hour_limit)
        await claim_photos(reporter.id, sub.photo_ids, field=(*INPUT, "photoIds"))
        case: Case | None
        if sub.join_case_id is not None:
            case = await _case_to_join(sub.join_case_id, reporter.id, checked)
        else:
            case = await find_duplicate(checked.category_id, checked.category, checked.point, now)
        joining = case is not None
        if case is None:
            assert decision is not None
            what = NewCase(checked.category, checked.category_id, checked.point, checked.description)
            case = await open_case(what, decision, snapshot, reporter.id, now)
            opened.append(case)
        report = await Report.create(
            reporter_id=reporter.id,
            client_id=sub.client_id,
            fingerprint=content_print,
            category_id=checked.category_id,
            case_id=case.id,
            description=checked.description,
            latitude=checked.point.lat,
            longitude=checked.point.lon,
            original_latitude=sub.location.latitude,
            original_longitude=sub.location.longitude,
            crs=sub.location.crs,
            accuracy_m=sub.location.accuracy_m,
            observed_at=checked.observed_at,
            evidence=checked.evidence,
            photo_ids=list(sub.photo_ids),
            anonymous=sub.anonymous,
            contact_consent=sub.contact_consent,
            source=sub.source,
            origin=dict(sub.origin),
            created_at=now,
        )
        if joining:
            await _add_report(case, report, now, me_too=sub.join_case_id is not None)
        if case.public:
            await set_public(sub.photo_ids)
        return report

    report, created = await create_once(
        Report,
        lookup={"reporter_id": reporter.id, "client_id": sub.client_id},
        content_fingerprint=content_print,
        create=create,
    )
    if created and opened:  # a case of this report alone, as written: nothing to read back
        return SubmitResult(report, opened[0], False, created)
    case = await Case.get(id=report.case_id)
    joined = await Report.filter(case_id=case.id, id__lt=report.id).exists()
    return SubmitResult(report, case, joined, created)


async def _check_rate(reporter_id: int, now: datetime, per_hour: int) -> None:
    # Counted in the database, so the limit holds however many server processes there are.
    recent = await Report.filter(reporter_id=reporter_id, created_at__gte=now - timedelta(hours=1)).count()
    if recent >= per_hour:
        raise DomainError(
            ErrorCode.RATE_LIMITED, f"At most {per_hour} reports an hour; please try again later."
        )


def _search_box(lat: float, lon: float, radius_m: float) -> Q:
    box = bbox_around(lat, lon, radius_m)
    condition = Q(latitude__gte=box.min_lat, latitude__lte=box.max_lat)
    if box.crosses_antimeridian:
        return condition & (Q(longitude__gte=box.min_lon) | Q(longitude__lte=box.max_lon))
    return condition & Q(longitude__gte=box.min_lon, longitude__lte=box.max_lon)


async def find_duplicate(category_id: int, category: Category, point: LatLon, now: datetime) -> Case | None:
    """The nearest open case of the category within its radius whose last report is within its window.

    The composite index (category, status, latitude, longitude) narrows to a small box; the exact
    distance check runs on the few candidates.
    """
    since = now - timedelta(hours=category.duplicate_window_hours)
    candidates = await (
        Case.filter(
            _search_box(point.lat, point.lon, category.duplicate_radius_m),
            category_id=category_id,
            status__in=OPEN_STATUSES,
            last_reported_at__gte=since,
        )
        .limit(200)
        .values_list("id", "latitude", "longitude")
    )
    best = min(
        ((haversine_m(point.lat, point.lon, lat, lon), case_id) for case_id, lat, lon in candidates),
        default=None,
    )
    if best is None or best[0] > category.duplicate_radius_m:
        return None
    return await Case.get(id=best[1])


async def _case_to_join(case_id: int, reporter_id: int, checked: _Checked) -> Case:
    """A "me too": the resident picked a nearby open case; it must be one they could see and near."""
    path = (*INPUT, "joinCase")
    case = await Case.get_or_none(id=case_id)
    if case is None or not await access.may_join(reporter_id, case):
        raise not_found("case", *path)
    if case.status not in OPEN_STATUSES:
        raise conflict(f"This case is {case.status}; submit a new report instead.", *path)
    if case.category_id != checked.category_id:
        raise invalid("The case is about another category.", *path)
    # Twice the grouping radius: the resident may stand a little away from where the first one did.
    limit = 2 * checked.category.duplicate_radius_m
    if haversine_m(checked.point.lat, checked.point.lon, case.latitude, case.longitude) > limit:
        raise invalid(f"The case is more than {limit:g} m from your location.", *path)
    return case


async def _add_report(case: Case, report: Report, now: datetime, *, me_too: bool) -> None:
    new_reporter = not await Report.filter(
        case_id=case.id, reporter_id=report.reporter_id, id__lt=report.id
    ).exists()
    # Counters by expression, not read-modify-write, so concurrent joins all count. The version is for
    # staff transitions and stays: a resident joining must not make a staff action fail.
    await Case.filter(id=case.id).update(
        report_count=F("report_count") + 1,
        reporter_count=F("reporter_count") + (1 if new_reporter else 0),
        last_reported_at=now,
        updated_at=now,
    )
    event = CaseEvent(
        case_id=case.id,
        actor_id=report.reporter_id,
        kind=REPORT_ADDED,
        department_id=case.department_id,
        category_id=case.category_id,
        note="me too" if me_too else "grouped as a duplicate",
        data={"report": report.id, "new_reporter": new_reporter, "me_too": me_too},
        created_at=now,
    )
    await log(case, event)


def public_point(point: LatLon, home_related: bool) -> LatLon:
    """For home-related categories, the centre of a ~200 m grid cell, so the map never pins a home
    and many reports from one place cannot be averaged back to it."""
    if not home_related:
        return point
    step_lat = math.degrees(PUBLIC_GRID_M / 6_371_008.8)
    lat = (math.floor(point.lat / step_lat) + 0.5) * step_lat
    step_lon = step_lat / max(math.cos(math.radians(lat)), 0.01)
    lon = (math.floor(point.lon / step_lon) + 0.5) * step_lon
    return LatLon(max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon)))


@dataclass(frozen=True, slots=True)
class NewCase:
    """What a case opens with: its first report's category, place and words."""

    category: Category
    category_id: int
    point: LatLon
    description: str


async def open_case(
    what: NewCase, decision: RoutingDecision, snapshot: Snapshot, reporter_id: int, now: datetime
) -> Case:
    """A new case for a first report, routed by `decision` (TRIAGE when it names no department)."""
    code = decision.department_code
    routed = code is not None  # else TRIAGE
    department_id = snapshot.department_ids[code] if code is not None else None
    response_due = resolution_due = None
    # Dispatchers set another priority in triage or later; a later one moves no running deadline.
    priority = Priority.NORMAL
    chosen = None
    if department_id is not None:
        chosen = await dispatch_policy(what.category.sla_policy, priority, department_id)
    policy = sla_policies().get(chosen) if chosen else None
    if policy is not None:
        # By 12345 practice both clocks start when the case is dispatched to a department.
        response_due = policy.response.due(now, working_calendar())
        resolution_due = policy.resolution.due(now, working_calendar())
    shown = public_point(what.point, what.category.home_related)
    status = Status.ROUTED if routed else Status.TRIAGE
    case = await Case.create(
        reference=f"tmp-{uuid.uuid4().hex[:20]}",  # replaced by the real one below
        category_id=what.category_id,
        latitude=what.point.lat,
        longitude=what.point.lon,
        public_latitude=shown.lat,
        public_longitude=shown.lon,
        status=status,
        version=2,  # submit + route/triage, as `lifecycle.fold` counts them
        department_id=department_id,
        priority=priority,
        sla_policy=chosen,
        response_due_at=response_due,
        resolution_due_at=resolution_due,
        routing_rule=decision.rule_id,
        routing_reason=decision.reason,
        public=routed,
        summary=what.description,
        dispatched_at=now if routed else None,
        status_changed_at=now,
        last_reported_at=now,
        created_at=now,
        updated_at=now,
    )
    # The reference is the year and the row id: short to read out on the phone, unique by construction.
    case.reference = f"{now.year}-{case.id:06d}"
    await Case.filter(id=case.id).update(reference=case.reference)
    await log(
        case,
        *[
            CaseEvent(
                case_id=case.id,
                actor_id=reporter_id,
                kind=Action.SUBMIT.value,
                category_id=case.category_id,
                to_status=Status.SUBMITTED,
                created_at=now,
            ),
            CaseEvent(
                case_id=case.id,
                kind=(Action.ROUTE if routed else Action.TRIAGE).value,
                department_id=case.department_id,
                category_id=case.category_id,
                from_status=Status.SUBMITTED,
                to_status=status,
                note=decision.reason,
                data={"rule": decision.rule_id, "department": decision.department_code},
                created_at=now,
            ),
        ],
    )
    return case


# --- the read side -------------------------------------------------------------------------------


async def nearby_cases(
    snapshot: Snapshot, category_code: str, location: Location, radius_m: float | None = None
) -> list[tuple[Case, float]]:
    """Up to five public open cases of the category near the point, nearest first, with distances
    measured to their public location (so moving the query point cannot home in on a reporter)."""
    point = normalize_location(location, "location")
    category = snapshot.category(category_code)
    if category is None:
        raise invalid("No such category.", "categoryCode")
    radius = category.duplicate_radius_m if radius_m is None else radius_m
    if not math.isfinite(radius) or not 0 < radius <= 5000:
        raise invalid("The radius must be more than 0 and at most 5000 metres.", "radiusM")
    # Searched by the public location, in a box led by category and status (the index), the nearest
    # ranked in the database by a flat-earth distance (it orders points a few kilometres apart as the
    # true one does) from the index alone; only those few rows are then read whole. A wide category's
    # box in a dense city holds hundreds of open cases: reading them all grew the call twelvefold from
    # 10,000 to 1,000,000 cases (issue 18), and cutting them at an arbitrary 500 could miss the nearest.
    box = bbox_around(point.lat, point.lon, radius)
    candidates = access.public_cases().filter(
        _public_box(box), category_id=snapshot.category_ids[category.code], status__in=OPEN_STATUSES
    )
    if box.crosses_antimeridian:
        rows = await candidates.limit(500)  # rare enough to rank here; the flat distance cannot
    else:
        ranked = candidates.annotate(nearness=_flat_distance_squared(point.lat, point.lon))
        nearest = await ranked.order_by("nearness", "id").limit(NEARBY_MAX * 4).values_list("id", flat=True)
        rows = await Case.filter(id__in=list(nearest))
    found = sorted(
        ((c, haversine_m(point.lat, point.lon, c.public_latitude, c.public_longitude)) for c in rows),
        key=lambda item: (item[1], item[0].id),
    )
    return [(c, d) for c, d in found if d <= radius][:NEARBY_MAX]


def _public_box(box: BBox) -> Q:
    condition = Q(public_latitude__gte=box.min_lat, public_latitude__lte=box.max_lat)
    if box.crosses_antimeridian:
        return condition & (Q(public_longitude__gte=box.min_lon) | Q(public_longitude__lte=box.max_lon))
    return condition & Q(public_longitude__gte=box.min_lon, public_longitude__lte=box.max_lon)


def _flat_distance_squared(lat: float, lon: float) -> RawSQL:
    """A case's public location's squared distance from (lat, lon) in degrees of latitude, the
    longitude shrunk by the cosine of the latitude. The numbers are checked finite floats, written
    into the SQL as their repr (in parentheses, so a negative one cannot form a `--` comment)."""
    shrink = math.cos(math.radians(lat))
    d_lat = f"(public_latitude - ({float(lat)!r}))"
    d_lon = f"((public_longitude - ({float(lon)!r})) * {shrink!r})"
    return RawSQL(f"{d_lat} * {d_lat} + {d_lon} * {d_lon}")


def check_bbox(box: BBox) -> BBox:
    for name, value, bound in (
        ("minLatitude", box.min_lat, 90),
        ("maxLatitude", box.max_lat, 90),
        ("minLongitude", box.min_lon, 180),
        ("maxLongitude", box.max_lon, 180),
    ):
        if not math.isfinite(value) or abs(value) > bound:
            raise invalid(f"Must be a number from -{bound} to {bound}.", "bbox", name)
    if box.min_lat > box.max_lat:
        raise invalid("minLatitude must not exceed maxLatitude.", "bbox", "minLatitude")
    return box


def public_cases_query(
    box: BBox, category_ids: Sequence[int] | None, statuses: Sequence[Status] | None
) -> QuerySet[Case]:
    """The map feed: public cases inside `box`, of the given categories and statuses when named."""
    query = access.public_cases().filter(public_latitude__gte=box.min_lat, public_latitude__lte=box.max_lat)
    if box.crosses_antimeridian:
        query = query.filter(Q(public_longitude__gte=box.min_lon) | Q(public_longitude__lte=box.max_lon))
    else:
        query = query.filter(public_longitude__gte=box.min_lon, public_longitude__lte=box.max_lon)
    if category_ids is not None:
        query = query.filter(category_id__in=list(category_ids))
    if statuses is not None:
        query = query.filter(status__in=list(statuses))
    return query
