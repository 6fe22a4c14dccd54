"""GraphQL for patrols: areas, assignments, offline patrol recording, observations and compliance.

Resolvers translate; `patrols.*` decides. Relations go through per-request DataLoaders.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

import strawberry
from starlette.datastructures import UploadFile
from strawberry import relay
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from tortoise.expressions import Q

from identity.models import Role
from identity.models import User as UserModel
from kernel import clock
from kernel.errors import DomainError, ErrorCode, invalid
from kernel.geo import CoordinateSystem
from patrols import admin, areas, compliance, handoff, recording
from patrols.access import Viewer
from patrols.catalog import ObservationCategory, observation_categories
from patrols.gpx import MAX_GPX_BYTES
from patrols.models import ChiefAssignment, Observation, Patrol, PatrolArea, PatrolStatus, TrackPoint
from patrols.rules import AreaKind, ChiefKind, ChiefLevel, CountScope, PatrolRule, Period
from patrols.track import AuthenticityFlag, PatrolMode, PointFlag
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.identity.types import UserNode
from schema.node import decode_id
from schema.pagination import Connection, keyset_page
from schema.reports import LocationInput


async def _observations_of(patrol_ids: list[int]) -> list[list[Observation]]:
    grouped: dict[int, list[Observation]] = defaultdict(list)
    for row in await Observation.filter(patrol_id__in=patrol_ids).order_by("observed_at", "id"):
        grouped[row.patrol_id].append(row)
    return [grouped[i] for i in patrol_ids]


async def viewer(info: Info) -> Viewer:
    today = recording.local_date(clock.now())
    return await info.context.loaders.once(Viewer.load, info.context.principal, today)


async def _user(info: Info, user_id: int) -> UserNode | None:
    row = await info.context.loaders.rows(UserModel).load(user_id)
    return UserNode.from_model(row) if row else None


async def _area(info: Info, area_id: int) -> PatrolAreaNode:
    return PatrolAreaNode.from_model(await info.context.loaders.rows(PatrolArea).load(area_id))


# --- areas and assignments ------------------------------------------------------------------------


@strawberry.type(name="PatrolArea", description="A river segment, lake or forest area chiefs patrol. Public.")
class PatrolAreaNode(relay.Node):
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
    bbox: list[float] = strawberry.field(description="[minLon, minLat, maxLon, maxLat] as in GeoJSON.")

    @classmethod
    def from_model(cls, row: PatrolArea) -> PatrolAreaNode:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            kind=row.kind,
            admin_region=row.admin_region,
            geometry=row.geometry,
            length_m=row.length_m,
            area_m2=row.area_m2,
            bbox=[row.min_lon, row.min_lat, row.max_lon, row.max_lat],
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Any, required: bool = False) -> list[Any]:
        rows = await info.context.loaders.rows(PatrolArea).load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]


@strawberry.type(name="ChiefAssignment")
class ChiefAssignmentNode(relay.Node):
    id: relay.NodeID[int]
    level: ChiefLevel
    kind: ChiefKind
    valid_from: date
    valid_to: date | None = strawberry.field(description="Inclusive; null while in office.")
    _area_id: strawberry.Private[int]
    _chief_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: ChiefAssignment) -> ChiefAssignmentNode:
        return cls(
            id=row.id,
            level=row.level,
            kind=row.kind,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            _area_id=row.area_id,
            _chief_id=row.chief_id,
        )

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode:
        return await _area(info, self._area_id)

    @strawberry.field
    async def chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._chief_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Any, required: bool = False) -> list[Any]:
        ids = [int(i) for i in node_ids]
        me = await viewer(info)
        rows = {r.id: r for r in await ChiefAssignment.filter(id__in=ids).select_related("area")}
        return [
            cls.from_model(rows[i])
            if i in rows
            and me.sees_chief(rows[i].chief_id, [(rows[i].level, rows[i].area.admin_region, rows[i].kind)])
            else None
            for i in ids
        ]


# --- patrols --------------------------------------------------------------------------------------


@strawberry.type
class SeqRange:
    first: int
    last: int


@strawberry.type
class PatrolPause:
    paused_at: datetime
    resumed_at: datetime | None


@strawberry.type
class PatrolMetrics:
    duration_s: float = strawberry.field(description="From the first to the last valid fix, pauses excluded.")
    moving_time_s: float
    distance_m: float = strawberry.field(description="Geodesic, over valid fixes only.")
    coverage: float = strawberry.field(
        description="0..1: river length within 50 m of the track; lake shore within 50 m; "
        "forest area inside a 100 m swath."
    )
    valid_point_count: int
    flagged_point_count: int
    computed_at: datetime


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
    def from_model(cls, row: TrackPoint) -> TrackPointType:
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


@strawberry.type(name="Patrol", description="Visible to its chief, their supervisors and overseers only.")
class PatrolNode(relay.Node):
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
    delegated: bool = strawberry.field(description="Recorded by an assistant for the chief it counts for.")
    _row: strawberry.Private[Patrol]

    @classmethod
    def from_model(cls, row: Patrol) -> PatrolNode:
        return cls(
            id=row.id,
            client_id=row.client_id,
            mode=row.mode,
            status=row.status,
            started_at=row.started_at,
            started_received_at=row.started_received_at,
            finished_at=row.finished_at,
            finished_received_at=row.finished_received_at,
            point_count=row.point_count,
            late_upload=row.late_upload,
            delegated=row.chief_id != row.counted_for_id,
            _row=row,
        )

    @strawberry.field(description="Sequence numbers the server holds; the phone may drop these points.")
    def held_ranges(self) -> list[SeqRange]:
        return [SeqRange(first=a, last=b) for a, b in self._row.held_ranges]

    @strawberry.field
    def pauses(self) -> list[PatrolPause]:
        return [
            PatrolPause(
                paused_at=datetime.fromisoformat(a), resumed_at=datetime.fromisoformat(b) if b else None
            )
            for a, b in self._row.pauses
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
        rows = await info.context.loaders.batch(_observations_of).load(self._row.id)
        return [ObservationNode.from_model(r) for r in rows]

    @strawberry.field(
        description="The stored fixes in sequence order, flagged ones included (max 100 a page)."
    )
    async def track(self, first: int = 100, after: str | None = None) -> Connection[TrackPointType]:
        return await keyset_page(
            TrackPoint.filter(patrol_id=self._row.id),
            order=["seq"],
            first=first,
            after=after,
            to_node=TrackPointType.from_model,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Any, required: bool = False) -> list[Any]:
        ids = [int(i) for i in node_ids]
        rows = await (await viewer(info)).visible_patrols(list(await Patrol.filter(id__in=ids)))
        by_id = {r.id: r for r in rows}
        return [cls.from_model(by_id[i]) if i in by_id else None for i in ids]


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
class ObservationNode(relay.Node):
    id: relay.NodeID[int]
    client_id: str
    note: str
    latitude: float
    longitude: float
    observed_at: datetime
    photo_ids: list[strawberry.ID]
    case_reference: str | None = strawberry.field(
        description="The case it was handed off as, once escalated."
    )
    escalated_at: datetime | None
    _category: strawberry.Private[str]
    _patrol_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: Observation) -> ObservationNode:
        return cls(
            id=row.id,
            client_id=row.client_id,
            note=row.note,
            latitude=row.lat,
            longitude=row.lon,
            observed_at=row.observed_at,
            photo_ids=[strawberry.ID(str(relay.GlobalID("Photo", str(p)))) for p in row.photo_ids],
            case_reference=row.case_reference,
            escalated_at=row.escalated_at,
            _category=row.category,
            _patrol_id=row.patrol_id,
        )

    @strawberry.field
    def category(self) -> ObservationCategoryType:
        return ObservationCategoryType.of(observation_categories()[self._category])

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Any, required: bool = False) -> list[Any]:
        ids = [int(i) for i in node_ids]
        rows = await Observation.filter(id__in=ids)
        patrols = await (await viewer(info)).visible_patrols(
            list(await Patrol.filter(id__in={r.patrol_id for r in rows}))
        )
        visible = {p.id for p in patrols}
        by_id = {r.id: r for r in rows if r.patrol_id in visible}
        return [cls.from_model(by_id[i]) if i in by_id else None for i in ids]


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
        nodes = await PatrolNode.resolve_nodes(info=info, node_ids=[self._patrol_id])
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
        return [await _area(info, i) for i in sorted({a.area_id for a in self._verdict.assignments})]

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


# --- inputs and payloads --------------------------------------------------------------------------


@strawberry.input
class PatrolStartInput:
    client_id: str = strawberry.field(
        description="Generated by the phone; a retry with it returns the same patrol."
    )
    area_id: strawberry.ID
    mode: PatrolMode
    started_at: datetime
    sent_at: datetime | None = strawberry.field(default=None, description="The device clock when sending.")


@strawberry.input
class TrackPointInput:
    seq: int = strawberry.field(description="The phone's sequence number within the patrol.")
    t: datetime = strawberry.field(description="Device GNSS time, with offset.")
    latitude: float
    longitude: float
    crs: CoordinateSystem = CoordinateSystem.WGS84
    accuracy: float | None = None
    speed: float | None = None
    mock: bool = strawberry.field(default=False, description="Android isMock / mock provider.")


@strawberry.input
class PatrolTrackAppendInput:
    patrol_id: strawberry.ID
    points: list[TrackPointInput] | None = strawberry.field(
        default=None, description=f"1 to {recording.MAX_BATCH} points, any order. Or, faster:"
    )
    rows: JSON | None = strawberry.field(
        default=None,
        description="The same points in compact form: [[seq, epochMillis, lat, lon, accuracy, speed, mock], "
        "...] (the last three may be null or left out), all in `crs`. Parses several times faster.",
    )
    crs: CoordinateSystem = CoordinateSystem.WGS84
    sent_at: datetime | None = None


@strawberry.input
class PatrolTimeInput:
    patrol_id: strawberry.ID
    at: datetime


@strawberry.input
class PatrolFinishInput:
    patrol_id: strawberry.ID
    finished_at: datetime
    sent_at: datetime | None = None


@strawberry.input
class PatrolObservationRecordInput:
    client_id: str
    patrol_id: strawberry.ID
    category: str = strawberry.field(description="A code from `observationCategories`.")
    location: LocationInput
    observed_at: datetime
    note: str = ""
    photo_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class PatrolObservationEscalateInput:
    observation_id: strawberry.ID


@strawberry.input
class PatrolGpxImportInput:
    client_id: str
    area_id: strawberry.ID
    mode: PatrolMode
    gpx: str | None = strawberry.field(default=None, description="The GPX document as text, or:")
    file: Upload | None = strawberry.field(default=None, description="The GPX file (multipart upload).")


@strawberry.input
class PatrolAreaImportInput:
    geojson: JSON = strawberry.field(
        description="FeatureCollection; properties code, name, kind, admin_region. Known codes are updated."
    )


@strawberry.input
class ChiefAssignmentCreateInput:
    chief_id: strawberry.ID
    area_id: strawberry.ID
    level: ChiefLevel
    kind: ChiefKind
    valid_from: date
    valid_to: date | None = None


@strawberry.input
class ChiefAssignmentEndInput:
    assignment_id: strawberry.ID
    valid_to: date


@strawberry.input
class PatrolDelegationCreateInput:
    assistant_id: strawberry.ID
    valid_from: date
    valid_to: date


@strawberry.type
class PatrolPayload:
    patrol: PatrolNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolTrackAppendPayload:
    patrol: PatrolNode | None = None
    stored: int = strawberry.field(default=0, description="New points stored by this call.")
    duplicates: int = strawberry.field(default=0, description="Points the server already held, identical.")
    held_ranges: list[SeqRange] | None = strawberry.field(
        default=None, description="All sequence numbers the server holds for the patrol."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Per refused point (field: input.points.<index>); the rest were stored.",
    )


@strawberry.type
class ObservationPayload:
    observation: ObservationNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolGpxImportPayload:
    patrol: PatrolNode | None = None
    imported: int = 0
    duplicates_skipped: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolAreaImportPayload:
    areas: list[PatrolAreaNode] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ChiefAssignmentPayload:
    assignment: ChiefAssignmentNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PatrolDelegation:
    valid_from: date
    valid_to: date
    _assistant_id: strawberry.Private[int]

    @strawberry.field
    async def assistant(self, info: Info) -> UserNode | None:
        return await _user(info, self._assistant_id)


@strawberry.type
class PatrolDelegationPayload:
    delegation: PatrolDelegation | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _user_errors(errors: list[DomainError]) -> list[UserError]:
    return [UserError(code=e.code, message=e.message, field=e.field) for e in errors]


async def _gpx_bytes(input: PatrolGpxImportInput) -> bytes:
    if (input.gpx is None) == (input.file is None):
        raise invalid("Give either the GPX text or a file.", "input", "file")
    if input.gpx is not None:
        return input.gpx.encode("utf-8")
    if not isinstance(input.file, UploadFile):
        raise invalid("file must be a multipart upload.", "input", "file")
    data = await input.file.read(MAX_GPX_BYTES + 1)
    if len(data) > MAX_GPX_BYTES:
        raise DomainError(ErrorCode.TOO_LARGE, f"At most {MAX_GPX_BYTES} bytes.", ["input", "file"])
    return data


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# --- root fields ----------------------------------------------------------------------------------


@strawberry.type
class PatrolsQuery:
    @strawberry.field(description="Patrol areas, by code. Public.")
    async def patrol_areas(
        self,
        first: int = 50,
        after: str | None = None,
        kind: AreaKind | None = None,
        region: str | None = None,
    ) -> Connection[PatrolAreaNode]:
        query = PatrolArea.all()
        if kind is not None:
            query = query.filter(kind=kind)
        if region:
            query = query.filter(admin_region__startswith=region)
        return await keyset_page(
            query, order=["code"], first=first, after=after, to_node=PatrolAreaNode.from_model
        )

    @strawberry.field(description="What a chief may record on patrol.")
    def observation_categories(self) -> list[ObservationCategoryType]:
        return [ObservationCategoryType.of(c) for c in observation_categories().values()]

    @strawberry.field(description="The caller's assignments, current and past, newest first.")
    async def my_assignments(self, info: Info) -> list[ChiefAssignmentNode]:
        principal = info.context.require_principal()
        rows = await ChiefAssignment.filter(chief_id=principal.user.id).order_by("-valid_from", "-id")
        return [ChiefAssignmentNode.from_model(r) for r in rows]

    @strawberry.field(description="Patrols the caller recorded or that count for them, newest first.")
    async def my_patrols(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[PatrolNode]:
        me = info.context.require_principal().user.id
        return await keyset_page(
            Patrol.filter(Q(chief_id=me) | Q(counted_for_id=me)),
            order=["-started_at", "-id"],
            first=first,
            after=after,
            to_node=PatrolNode.from_model,
        )

    @strawberry.field(
        description="Required, done and missing patrols per chief and rule over the local dates from..to, "
        "with the reason each patrol counted or not. Give one of chiefId, areaId, region. Callers see "
        "themselves and the chiefs they supervise; admins and the river-chief office see all."
    )
    async def patrol_compliance(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        chief_id: strawberry.ID | None = None,
        area_id: strawberry.ID | None = None,
        region: str | None = None,
    ) -> list[ComplianceVerdict]:
        info.context.require_principal()
        if sum(x is not None for x in (chief_id, area_id, region)) != 1:
            raise invalid("Give exactly one of chiefId, areaId or region.", "chiefId")
        verdicts = await compliance.compliance(
            await viewer(info),
            from_,
            to,
            chief_id=decode_id(chief_id, "User", "chiefId") if chief_id else None,
            area_id=decode_id(area_id, "PatrolArea", "areaId") if area_id else None,
            region=region,
        )
        return [ComplianceVerdict.of(v) for v in verdicts]

    @strawberry.field(
        description="Local dates of a month (YYYY-MM) the area was patrolled on. Public: no names, no tracks."
    )
    async def area_patrol_days(self, area_id: strawberry.ID, month: str) -> list[date]:
        match = _MONTH.match(month)
        if not match or not 1 <= int(match[2]) <= 12:
            raise invalid("month must look like 2026-05.", "month")
        first = date(int(match[1]), int(match[2]), 1)
        after = (first + timedelta(days=32)).replace(day=1)
        starts = await Patrol.filter(
            area_id=decode_id(area_id, "PatrolArea", "areaId"),
            status=PatrolStatus.FINISHED,
            started_at__gte=datetime.combine(first, time(), recording.LOCAL_TZ),
            started_at__lt=datetime.combine(after, time(), recording.LOCAL_TZ),
        ).values_list("started_at", flat=True)
        return sorted({recording.local_date(t) for t in starts})


def _chief(info: Info) -> UserModel:
    return info.context.require_role(Role.CHIEF, Role.STAFF).user


@strawberry.type
class PatrolsMutation:
    @payload_mutation("Start a patrol of an assigned area (or one delegated to you). Retry-safe by clientId.")
    async def patrol_start(self, info: Info, input: PatrolStartInput) -> PatrolPayload:
        patrol = await recording.start_patrol(
            _chief(info),
            client_id=input.client_id,
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            mode=input.mode,
            started_at=input.started_at,
            sent_at=input.sent_at,
        )
        return PatrolPayload(patrol=PatrolNode.from_model(patrol))

    @payload_mutation(
        "Upload a batch of track points, at any time, also after the finish. Each point is stored once; a "
        "repeated seq with other data is refused for that point only. The answer lists the held seqs."
    )
    async def patrol_track_append(
        self, info: Info, input: PatrolTrackAppendInput
    ) -> PatrolTrackAppendPayload:
        if (input.points is None) == (input.rows is None):
            raise invalid("Give either points or rows.", "input", "points")
        if input.rows is not None:
            points = recording.points_from_rows(input.rows, CoordinateSystem(input.crs))
        else:
            points = [
                recording.PointIn(
                    seq=p.seq,
                    t=p.t,
                    lat=p.latitude,
                    lon=p.longitude,
                    crs=CoordinateSystem(p.crs),
                    accuracy_m=p.accuracy,
                    speed_mps=p.speed,
                    mock=p.mock,
                )
                for p in input.points
            ]
        result = await recording.append_points(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            points,
            sent_at=input.sent_at,
            input_name="points" if input.rows is None else "rows",
        )
        return PatrolTrackAppendPayload(
            patrol=PatrolNode.from_model(result.patrol),
            stored=result.stored,
            duplicates=result.duplicates,
            held_ranges=[SeqRange(first=a, last=b) for a, b in result.patrol.held_ranges],
            user_errors=_user_errors(result.errors),
        )

    @payload_mutation("Pause recording (retry-safe).")
    async def patrol_pause(self, info: Info, input: PatrolTimeInput) -> PatrolPayload:
        patrol_id = decode_id(input.patrol_id, "Patrol", "input", "patrolId")
        return PatrolPayload(
            patrol=PatrolNode.from_model(await recording.pause_patrol(_chief(info), patrol_id, input.at))
        )

    @payload_mutation("Resume a paused patrol (retry-safe).")
    async def patrol_resume(self, info: Info, input: PatrolTimeInput) -> PatrolPayload:
        patrol_id = decode_id(input.patrol_id, "Patrol", "input", "patrolId")
        return PatrolPayload(
            patrol=PatrolNode.from_model(await recording.resume_patrol(_chief(info), patrol_id, input.at))
        )

    @payload_mutation("Finish and compute the metrics; finishing again returns the same patrol.")
    async def patrol_finish(self, info: Info, input: PatrolFinishInput) -> PatrolPayload:
        patrol = await recording.finish_patrol(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            input.finished_at,
            sent_at=input.sent_at,
        )
        return PatrolPayload(patrol=PatrolNode.from_model(patrol))

    @payload_mutation("Record an observation on one of your patrols (retry-safe by clientId).")
    async def patrol_observation_record(
        self, info: Info, input: PatrolObservationRecordInput
    ) -> ObservationPayload:
        observation = await recording.record_observation(
            _chief(info),
            decode_id(input.patrol_id, "Patrol", "input", "patrolId"),
            client_id=input.client_id,
            category=input.category,
            note=input.note,
            lat=input.location.latitude,
            lon=input.location.longitude,
            crs=CoordinateSystem(input.location.crs),
            observed_at=input.observed_at,
            photo_ids=[
                decode_id(p, "Photo", "input", "photoIds", str(i)) for i, p in enumerate(input.photo_ids)
            ],
        )
        return ObservationPayload(observation=ObservationNode.from_model(observation))

    @payload_mutation("Hand an observation off as a case, routed like a resident's report (retry-safe).")
    async def patrol_observation_escalate(
        self, info: Info, input: PatrolObservationEscalateInput
    ) -> ObservationPayload:
        assert info.context.services is not None
        observation = await handoff.escalate(
            _chief(info),
            decode_id(input.observation_id, "Observation", "input", "observationId"),
            await info.context.services.routing.current(),
        )
        return ObservationPayload(observation=ObservationNode.from_model(observation))

    @payload_mutation("Create a finished patrol from another app's GPX track (every point needs a time).")
    async def patrol_gpx_import(self, info: Info, input: PatrolGpxImportInput) -> PatrolGpxImportPayload:
        user = _chief(info)
        data = await _gpx_bytes(input)
        result = await recording.import_gpx(
            user,
            client_id=input.client_id,
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            mode=input.mode,
            data=data,
        )
        return PatrolGpxImportPayload(
            patrol=PatrolNode.from_model(result.patrol),
            imported=result.imported,
            duplicates_skipped=result.duplicates,
        )

    @payload_mutation("Import patrol areas from GeoJSON; lengths and areas are computed. Admins only.")
    async def patrol_area_import(self, info: Info, input: PatrolAreaImportInput) -> PatrolAreaImportPayload:
        info.context.require_role(Role.ADMIN)
        rows = await areas.import_feature_collection(input.geojson)
        return PatrolAreaImportPayload(areas=[PatrolAreaNode.from_model(r) for r in rows])

    @payload_mutation("Make a chief responsible for an area from a date. Admins only.")
    async def chief_assignment_create(
        self, info: Info, input: ChiefAssignmentCreateInput
    ) -> ChiefAssignmentPayload:
        info.context.require_role(Role.ADMIN)
        row = await admin.assign_chief(
            chief_id=decode_id(input.chief_id, "User", "input", "chiefId"),
            area_id=decode_id(input.area_id, "PatrolArea", "input", "areaId"),
            level=input.level,
            kind=input.kind,
            valid_from=input.valid_from,
            valid_to=input.valid_to,
        )
        return ChiefAssignmentPayload(assignment=ChiefAssignmentNode.from_model(row))

    @payload_mutation("End an assignment on a date; it stays as history. Admins only.")
    async def chief_assignment_end(
        self, info: Info, input: ChiefAssignmentEndInput
    ) -> ChiefAssignmentPayload:
        info.context.require_role(Role.ADMIN)
        row = await admin.end_assignment(
            decode_id(input.assignment_id, "ChiefAssignment", "input", "assignmentId"), input.valid_to
        )
        return ChiefAssignmentPayload(assignment=ChiefAssignmentNode.from_model(row))

    @payload_mutation("Let an assistant patrol for you for a period; their patrols count for you.")
    async def patrol_delegation_create(
        self, info: Info, input: PatrolDelegationCreateInput
    ) -> PatrolDelegationPayload:
        chief = info.context.require_role(Role.CHIEF).user
        row = await admin.delegate(
            chief,
            assistant_id=decode_id(input.assistant_id, "User", "input", "assistantId"),
            valid_from=input.valid_from,
            valid_to=input.valid_to,
        )
        return PatrolDelegationPayload(
            delegation=PatrolDelegation(
                valid_from=row.valid_from, valid_to=row.valid_to, _assistant_id=row.assistant_id
            )
        )
