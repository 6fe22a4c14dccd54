"""Output types of patrols: areas, assignments, patrols with their tracks and observations, compliance."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from identity import audit
from identity.models import AccessKind
from identity.models import User as UserModel
from identity.service import Principal
from kernel.geo import CoordinateSystem
from patrols import access, compliance, metrics, reads, signboard
from patrols.catalog import ObservationCategory, observation_categories
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
from patrols.rules import AreaKind, ChiefKind, ChiefLevel, CountScope, PatrolRule, Period
from patrols.track import AuthenticityFlag, PatrolMode, PointFlag
from schema.context import Info
from schema.identity.types import UserNode
from schema.node import ModelNode
from schema.pagination import Connection, keyset_page


async def _user(info: Info, user_id: int) -> UserNode | None:
    row = await info.context.loaders.rows(UserModel).load(user_id)
    return UserNode.from_model(row) if row else None


async def _areas(info: Info, area_ids: list[int]) -> list[PatrolAreaNode]:
    rows = await info.context.loaders.rows(PatrolArea).load_many(area_ids)
    # Every id comes from a row that refers to its area, and areas are never deleted (ON DELETE RESTRICT).
    return [PatrolAreaNode.from_model(row) for row in rows if row is not None]


async def _area(info: Info, area_id: int) -> PatrolAreaNode:
    (area,) = await _areas(info, [area_id])
    return area


# --- areas and assignments ------------------------------------------------------------------------


@strawberry.type(name="PatrolArea", description="A river segment, lake or forest area chiefs patrol. Public.")
class PatrolAreaNode(ModelNode[PatrolArea]):
    model = PatrolArea
    id: relay.NodeID[int]
    code: str
    name: str
    kind: AreaKind
    admin_region: str = strawberry.field(description="GB/T 2260 division code.")
    geometry: JSON = strawberry.field(description="GeoJSON geometry, WGS-84.")
    length_m: float = strawberry.field(
        description="Geodesic length of the line, or of the polygon's boundary."
    )
    area_m2: float = strawberry.field(description="Geodesic area (0 for a river segment).")
    _row: strawberry.Private[PatrolArea]

    @strawberry.field(description="[minLon, minLat, maxLon, maxLat] as in GeoJSON.")
    def bbox(self) -> list[float]:
        return [self._row.min_lon, self._row.min_lat, self._row.max_lon, self._row.max_lat]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[PatrolArea]) -> Sequence[PatrolArea]:
        return access.visible_areas(principal, rows)


@strawberry.type(name="ChiefAssignment")
class ChiefAssignmentNode(ModelNode[ChiefAssignment]):
    model = ChiefAssignment
    id: relay.NodeID[int]
    level: ChiefLevel
    kind: ChiefKind
    valid_from: date
    valid_to: date | None = strawberry.field(description="Inclusive; null while in office.")
    _row: strawberry.Private[ChiefAssignment]

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode:
        return await _area(info, self._row.area_id)

    @strawberry.field
    async def chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.chief_id)

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[ChiefAssignment]
    ) -> list[ChiefAssignment]:
        return await access.visible_assignments(principal, rows)


@strawberry.type(
    name="VolunteerEnrollment",
    description="A social supervisor (民间河长) enrolled to patrol an area. Visible to the volunteer and "
    "to overseers (admins, the chief offices).",
)
class VolunteerEnrollmentNode(ModelNode[VolunteerEnrollment]):
    model = VolunteerEnrollment
    id: relay.NodeID[int]
    valid_from: date
    valid_to: date | None = strawberry.field(description="Inclusive; null while enrolled.")
    _row: strawberry.Private[VolunteerEnrollment]

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode:
        return await _area(info, self._row.area_id)

    @strawberry.field
    async def volunteer(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.volunteer_id)

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[VolunteerEnrollment]
    ) -> list[VolunteerEnrollment]:
        return await access.visible_enrollments(principal, rows)


# --- patrols --------------------------------------------------------------------------------------


@strawberry.type
class SeqRange:
    first: int
    last: int


def seq_ranges(held_ranges: list[list[int]]) -> list[SeqRange]:
    return [SeqRange(first=a, last=b) for a, b in held_ranges]


@strawberry.type
class PatrolPause:
    paused_at: datetime
    resumed_at: datetime | None


@strawberry.type(
    description="What the straightness signal measured; see docs/patrols.md, How a track is measured."
)
class StraightnessSignal:
    value: float | None = strawberry.field(
        description="Straight-line over path length, weighted by length over the measured stretches (1 = a "
        "ruler line). Null when no moving stretch was long enough."
    )
    measured_m: float = strawberry.field(description="Length of the moving stretches it was measured over.")
    stretches: int = strawberry.field(
        description="Moving stretches of at least 1 km, between stops and gaps."
    )
    point_count: int = strawberry.field(description="Valid fixes inside those stretches.")


@strawberry.type(
    description="What the regularity signal measured; see docs/patrols.md, How a track is measured."
)
class RegularitySignal:
    interval_variation: float | None = strawberry.field(
        description="Coefficient of variation of the intervals between fixes; null when not measured."
    )
    speed_variation: float | None = strawberry.field(
        description="Coefficient of variation of the speeds between fixes; null when not measured."
    )
    measured_m: float = strawberry.field(description="Length of the moving stretches it was measured over.")
    stretches: int = strawberry.field(
        description="Moving stretches of at least 1 km, between stops and gaps."
    )
    point_count: int = strawberry.field(description="Valid fixes inside those stretches.")


@strawberry.type
class PatrolMetrics:
    duration_s: float = strawberry.field(description="From the first to the last valid fix, pauses excluded.")
    moving_time_s: float = strawberry.field(description="Time moving: no stops, gaps or recorded pauses.")
    pause_time_s: float | None = strawberry.field(
        description="Standing still (within the jitter radius) or in a recorded pause. Moving, pause and gap "
        "time add up to the time from the first to the last valid fix. Null for patrols measured before it "
        "existed."
    )
    gap_time_s: float | None = strawberry.field(
        description="Missing data: intervals without fixes longer than 2 min, outside recorded pauses."
    )
    distance_m: float = strawberry.field(
        description="Used distance: over valid fixes, smoothed over 10 s and thinned to steps of 5 m or more."
    )
    raw_distance_m: float | None = strawberry.field(
        description="Plain sum of the steps between valid fixes, as a GPX export measures it."
    )
    straightness: StraightnessSignal | None = strawberry.field(
        description="Null for patrols measured before the signal said what it measured."
    )
    regularity: RegularitySignal | None = strawberry.field(
        description="Null for patrols measured before the signal said what it measured."
    )
    coverage: float = strawberry.field(
        description="0..1: river length within 50 m of the track; lake shore within 50 m; "
        "forest area inside a 100 m swath."
    )
    valid_point_count: int
    flagged_point_count: int
    computed_at: datetime


_Signal = TypeVar("_Signal", StraightnessSignal, RegularitySignal)


def _signal(kind: type[_Signal], signals: dict[str, Any] | None, name: str) -> _Signal | None:
    if not signals or name not in signals:
        return None
    stored = dict(signals[name])
    stored["point_count"] = stored.pop("points")
    return kind(**stored)


@strawberry.type
class AuthenticityFinding:
    flag: AuthenticityFlag
    reason: str


@strawberry.type
class Authenticity:
    suspicious: bool
    findings: list[AuthenticityFinding]


@strawberry.type
class TrackPointFlagReason:
    flag: PointFlag
    reason: str


@strawberry.type(name="TrackPoint", description="A fix as stored: flagged fixes are kept, with reasons.")
class TrackPointType:
    seq: int
    t: datetime
    latitude: float
    longitude: float
    crs: CoordinateSystem
    accuracy: float | None
    speed: float | None
    mock: bool
    flags: list[TrackPointFlagReason]

    @classmethod
    def of(cls, row: TrackPoint) -> TrackPointType:
        """Not a node (a fix has no id of its own): built directly, a page holds up to 100."""
        return cls(
            seq=row.seq,
            t=row.t,
            latitude=row.lat,
            longitude=row.lon,
            crs=CoordinateSystem(row.crs),
            accuracy=row.accuracy_m,
            speed=row.speed_mps,
            mock=row.mock,
            flags=[TrackPointFlagReason(flag=PointFlag(f), reason=r) for f, r in (row.flags or {}).items()],
        )


@strawberry.enum(description="Where an observation stands: a problem found, then handed off or solved.")
class ObservationStatus(enum.Enum):
    OPEN = "OPEN"
    HANDED_OFF = strawberry.enum_value("HANDED_OFF", description="Handed off as a case (交办/转办).")
    HANDLED_ON_SPOT = strawberry.enum_value(
        "HANDLED_ON_SPOT", description="Solved on the spot (现场处理), after-photos as proof; no case."
    )


def observation_status(row: Observation) -> ObservationStatus:
    if row.handled_on_spot_at is not None:
        return ObservationStatus.HANDLED_ON_SPOT
    if row.case_id is not None:
        return ObservationStatus.HANDED_OFF
    return ObservationStatus.OPEN


@strawberry.type
class PatrolProblems:
    found: int
    handed_off: int
    handled_on_spot: int
    open: int


@strawberry.type(name="Patrol", description="Visible to its chief, their supervisors and overseers only.")
class PatrolNode(ModelNode[Patrol]):
    model = Patrol
    id: relay.NodeID[int]
    client_id: str
    mode: PatrolMode
    status: PatrolStatus
    started_at: datetime = strawberry.field(description="As the device claims.")
    started_received_at: datetime = strawberry.field(description="When the server first heard of it.")
    finished_at: datetime | None
    finished_received_at: datetime | None
    point_count: int
    late_upload: bool
    _row: strawberry.Private[Patrol]

    @strawberry.field(description="Recorded by an assistant for the chief it counts for.")
    def delegated(self) -> bool:
        return self._row.chief_id != self._row.counted_for_id

    @strawberry.field(
        description="Recorded by a social supervisor (民间河长): counted apart, never in a chief's "
        "compliance (list them with volunteerPatrols)."
    )
    def by_volunteer(self) -> bool:
        return self._row.by_volunteer

    @strawberry.field(
        description="Problems found on this patrol (its observations), handed off as cases, handled on "
        "the spot (现场处理) and still open. Solved on the spot counts as found and solved."
    )
    async def problems(self, info: Info) -> PatrolProblems:
        rows = await info.context.loaders.batch(reads.observations_of_patrols).load(self._row.id)
        states = [observation_status(r) for r in rows]
        return PatrolProblems(
            found=len(states),
            handed_off=states.count(ObservationStatus.HANDED_OFF),
            handled_on_spot=states.count(ObservationStatus.HANDLED_ON_SPOT),
            open=states.count(ObservationStatus.OPEN),
        )

    @strawberry.field(description="Sequence numbers the server holds; the phone may drop these points.")
    def held_ranges(self) -> list[SeqRange]:
        return seq_ranges(self._row.held_ranges)

    @strawberry.field
    def pauses(self) -> list[PatrolPause]:
        return [
            PatrolPause(paused_at=paused_at, resumed_at=resumed_at)
            for paused_at, resumed_at in map(metrics.pause_times, self._row.pauses)
        ]

    @strawberry.field(description="Null until the patrol is finished.")
    def metrics(self) -> PatrolMetrics | None:
        r = self._row
        if r.metrics_at is None:
            return None
        return PatrolMetrics(
            duration_s=r.duration_s or 0.0,
            moving_time_s=r.moving_time_s or 0.0,
            distance_m=r.distance_m or 0.0,
            raw_distance_m=r.raw_distance_m,
            pause_time_s=r.pause_time_s,
            gap_time_s=r.gap_time_s,
            straightness=_signal(StraightnessSignal, r.track_signals, "straightness"),
            regularity=_signal(RegularitySignal, r.track_signals, "regularity"),
            coverage=r.coverage or 0.0,
            valid_point_count=r.valid_point_count or 0,
            flagged_point_count=r.flagged_point_count or 0,
            computed_at=r.metrics_at,
        )

    @strawberry.field
    def authenticity(self) -> Authenticity:
        findings = [
            AuthenticityFinding(flag=AuthenticityFlag(f), reason=r)
            for f, r in zip(self._row.authenticity_flags, self._row.authenticity_reasons, strict=False)
        ]
        return Authenticity(suspicious=bool(findings), findings=findings)

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode:
        return await _area(info, self._row.area_id)

    @strawberry.field(description="The account that recorded the patrol.")
    async def recorded_by(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.chief_id)

    @strawberry.field(description="The chief the patrol counts for.")
    async def chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.counted_for_id)

    @strawberry.field
    async def observations(self, info: Info) -> list[ObservationNode]:
        rows = await info.context.loaders.batch(reads.observations_of_patrols).load(self._row.id)
        return [ObservationNode.from_model(r) for r in rows]

    @strawberry.field(
        description="The stored fixes in sequence order, flagged ones included (max 100 a page)."
    )
    # Track points have no global id, while relay's Connection is typed for nodes only: the two ignores
    # below are that typing limit (strawberry serves a connection of any type).
    async def track(
        self, info: Info, first: int = 100, after: str | None = None
    ) -> Connection[TrackPointType]:  # type: ignore[type-var]
        await audit.note_read(info.context.principal, AccessKind.TRACK, "patrol", self._row.id)
        return await keyset_page(  # type: ignore[type-var]
            reads.track_points(self._row.id),
            order=["seq"],
            first=first,
            after=after,
            to_node=TrackPointType.of,
        )

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Patrol]) -> list[Patrol]:
        return await access.visible_patrols(principal, rows)


@strawberry.type(name="ObservationCategory")
class ObservationCategoryType:
    code: str
    name_zh: str
    name_en: str
    area_kinds: list[AreaKind]
    case_category: str = strawberry.field(description="The reports category a hand-off becomes.")

    @classmethod
    def of(cls, c: ObservationCategory) -> ObservationCategoryType:
        return cls(
            code=c.code,
            name_zh=c.name_zh,
            name_en=c.name_en,
            area_kinds=sorted(c.area_kinds),
            case_category=c.case_category,
        )


@strawberry.type(
    name="Observation", description="Something a chief found on patrol; visible like its patrol."
)
class ObservationNode(ModelNode[Observation]):
    model = Observation
    fields_from_model = {"latitude": "lat", "longitude": "lon"}
    id: relay.NodeID[int]
    client_id: str
    note: str
    latitude: float
    longitude: float
    observed_at: datetime
    case_reference: str | None = strawberry.field(
        description="The case it was handed off as, once escalated."
    )
    escalated_at: datetime | None
    handled_on_spot_at: datetime | None = strawberry.field(
        description="When it was recorded as handled on the spot (现场处理)."
    )
    handling_note: str = strawberry.field(description="What was done on the spot.")
    _row: strawberry.Private[Observation]

    @strawberry.field
    def status(self) -> ObservationStatus:
        return observation_status(self._row)

    @strawberry.field
    def photo_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(str(relay.GlobalID("Photo", str(p)))) for p in self._row.photo_ids]

    @strawberry.field(description="Photos taken after handling it on the spot.")
    def after_photo_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(str(relay.GlobalID("Photo", str(p)))) for p in self._row.after_photo_ids]

    @strawberry.field
    def category(self) -> ObservationCategoryType:
        return ObservationCategoryType.of(observation_categories()[self._row.category])

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Observation]) -> list[Observation]:
        return await access.visible_observations(principal, rows)


# --- compliance -----------------------------------------------------------------------------------


@strawberry.type(name="PatrolRule", description="A patrol-frequency rule and the regulation it comes from.")
class PatrolRuleType:
    code: str
    source: str
    region_code: str
    chief_level: ChiefLevel
    chief_kind: ChiefKind
    area_kind: AreaKind | None
    period: Period
    min_count: int
    count_scope: CountScope
    active_months: list[int]
    min_duration_min: float | None
    min_distance_km: float | None
    min_coverage: float | None
    min_gap_hours: float | None

    @classmethod
    def of(cls, r: PatrolRule) -> PatrolRuleType:
        return cls(
            code=r.code,
            source=r.source,
            region_code=r.region_code,
            chief_level=r.chief_level,
            chief_kind=r.chief_kind,
            area_kind=r.area_kind,
            period=r.period,
            min_count=r.min_count,
            count_scope=r.count_scope,
            active_months=sorted(r.active_months),
            min_duration_min=r.min_duration_min,
            min_distance_km=r.min_distance_km,
            min_coverage=r.min_coverage,
            min_gap_hours=r.min_gap_hours,
        )


@strawberry.type
class CompliancePeriod:
    label: str = strawberry.field(description="e.g. 2026-W19, 2026-05-D2 (second 旬), 2026-Q2.")
    first_day: date
    last_day: date
    required: int
    done: int
    missing: int
    note: str | None = strawberry.field(
        description="Why nothing is required (partial period, inactive month)."
    )
    _area_id: strawberry.Private[int | None]

    @strawberry.field(description="Set when the rule counts per area.")
    async def area(self, info: Info) -> PatrolAreaNode | None:
        return None if self._area_id is None else await _area(info, self._area_id)


@strawberry.type
class PatrolJudgement:
    counted: bool
    period: str | None
    reasons: list[str] = strawberry.field(description='Why, e.g. "22 min < 30 min required".')
    delegated: bool
    _patrol_id: strawberry.Private[int]

    @strawberry.field
    def patrol_id(self) -> strawberry.ID:
        return strawberry.ID(str(relay.GlobalID("Patrol", str(self._patrol_id))))

    @strawberry.field
    async def patrol(self, info: Info) -> PatrolNode | None:
        nodes = await PatrolNode.resolve_nodes(info=info, node_ids=[str(self._patrol_id)])
        return nodes[0]


@strawberry.type
class ComplianceVerdict:
    rule: PatrolRuleType
    first_day: date = strawberry.field(description="The assessed range, clipped to the assignments.")
    last_day: date
    required: int
    done: int
    missing: int
    met: bool
    _verdict: strawberry.Private[compliance.ChiefVerdict]

    @strawberry.field
    async def chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._verdict.chief_id)

    @strawberry.field
    async def areas(self, info: Info) -> list[PatrolAreaNode]:
        return await _areas(info, sorted({a.area_id for a in self._verdict.assignments}))

    @strawberry.field
    def periods(self) -> list[CompliancePeriod]:
        return [
            CompliancePeriod(
                label=p.label,
                first_day=p.first_day,
                last_day=p.last_day,
                required=p.required,
                done=p.done,
                missing=p.missing,
                note=p.note,
                _area_id=int(p.area_id) if p.area_id else None,
            )
            for p in self._verdict.verdict.periods
        ]

    @strawberry.field(description="Every patrol in the range, with why it counted or not.")
    def patrols(self) -> list[PatrolJudgement]:
        delegated = self._verdict.delegated
        return [
            PatrolJudgement(
                counted=j.counted,
                period=j.period,
                reasons=list(j.reasons),
                delegated=int(j.patrol_id) in delegated,
                _patrol_id=int(j.patrol_id),
            )
            for j in self._verdict.verdict.patrols
        ]

    @classmethod
    def of(cls, v: compliance.ChiefVerdict) -> ComplianceVerdict:
        return cls(
            rule=PatrolRuleType.of(v.rule),
            first_day=v.first_day,
            last_day=v.last_day,
            required=v.verdict.required,
            done=v.verdict.done,
            missing=v.verdict.missing,
            met=v.verdict.met,
            _verdict=v,
        )


@strawberry.type
class PatrolDelegation:
    valid_from: date
    valid_to: date = strawberry.field(description="Inclusive; earlier than planned when ended early.")
    _assistant_id: strawberry.Private[int]
    _chief_id: strawberry.Private[int | None] = None
    _pk: strawberry.Private[int | None] = None

    @strawberry.field(description="The delegation's id, for patrolDelegationEnd.")
    def id(self) -> strawberry.ID | None:
        return (
            None
            if self._pk is None
            else strawberry.ID(str(relay.GlobalID("PatrolDelegation", str(self._pk))))
        )

    @strawberry.field
    async def assistant(self, info: Info) -> UserNode | None:
        return await _user(info, self._assistant_id)

    @strawberry.field(description="The chief the assistant's patrols count for.")
    async def chief(self, info: Info) -> UserNode | None:
        return None if self._chief_id is None else await _user(info, self._chief_id)

    @classmethod
    def from_model(cls, row: Delegation) -> PatrolDelegation:
        return cls(
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            _assistant_id=row.assistant_id,
            _chief_id=row.chief_id,
            _pk=row.id,
        )


@strawberry.type(
    description="A chief as the signboard names them: position, and the name as the city publishes it."
)
class SignboardChief:
    level: ChiefLevel
    kind: ChiefKind
    position: str = strawberry.field(description="e.g. 村级河长.")
    name: str | None = strawberry.field(description="As the city publishes it (full, surname, or none).")
    since: date


@strawberry.type(
    description="The public signboard (公示牌) of a patrol area, from the assignments in force today."
)
class Signboard:
    code: str
    name: str
    kind: AreaKind
    region: str
    chiefs: list[SignboardChief]
    responsibilities: list[str]
    office_phone: str | None = strawberry.field(description="The chief office's public number.")
    complaint_url: str | None
    qr_payload: str | None = strawberry.field(description="What the signboard's QR code holds.")
    valid_from: date | None = strawberry.field(description="The first day this content holds.")
    valid_until: date | None = strawberry.field(description="The last day it holds; null: no change planned.")

    @classmethod
    def of(cls, board: signboard.Signboard) -> Signboard:
        return cls(
            code=board.code,
            name=board.name,
            kind=board.area_kind,
            region=board.region,
            chiefs=[
                SignboardChief(level=c.level, kind=c.kind, position=c.position, name=c.name, since=c.since)
                for c in board.chiefs
            ],
            responsibilities=list(board.responsibilities),
            office_phone=board.office_phone,
            complaint_url=board.complaint_url,
            qr_payload=board.complaint_url,
            valid_from=board.valid_from,
            valid_until=board.valid_until,
        )
