"""Output types of reports and cases, and their field resolvers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from identity.models import Role, User
from identity.service import Principal
from kernel import clock
from kernel.geo import CoordinateSystem
from reports import casework, deadlines, models, service
from reports.lifecycle import Action, Status, allowed_actions
from reports.models import CategoryGroup, ExtensionStatus, Priority, RuleScope
from reports.sla import DeadlineState
from reports.store import Snapshot
from schema.context import Info
from schema.identity.types import DepartmentNode, UserNode
from schema.media.types import PhotoNode, load_photos
from schema.node import ModelNode


@strawberry.type(
    name="DeadlineExtension", description="A department's request for more time to resolve (延期)."
)
class DeadlineExtensionNode:
    id: strawberry.ID
    amount: float = strawberry.field(description="In the unit of the case's resolution deadline.")
    reason: str
    status: ExtensionStatus
    decision_note: str
    requested_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_model(cls, row: models.DeadlineExtension) -> DeadlineExtensionNode:
        return cls(
            id=strawberry.ID(relay.to_base64("DeadlineExtension", row.id)),
            amount=row.amount,
            reason=row.reason,
            status=row.status,
            decision_note=row.decision_note,
            requested_at=row.created_at,
            decided_at=row.decided_at,
        )


async def _events_of(case_ids: list[int]) -> list[list[models.CaseEvent]]:
    grouped: dict[int, list[models.CaseEvent]] = {i: [] for i in case_ids}
    for event in await models.CaseEvent.filter(case_id__in=case_ids).order_by("id"):
        grouped[event.case_id].append(event)
    return [grouped[i] for i in case_ids]


async def _reports_of(case_ids: list[int]) -> list[list[models.Report]]:
    grouped: dict[int, list[models.Report]] = {i: [] for i in case_ids}
    for report in await models.Report.filter(case_id__in=case_ids).order_by("id"):
        grouped[report.case_id].append(report)
    return [grouped[i] for i in case_ids]


async def _feedback_of(case_ids: list[int]) -> list[list[models.CaseFeedback]]:
    grouped: dict[int, list[models.CaseFeedback]] = {i: [] for i in case_ids}
    for row in await models.CaseFeedback.filter(case_id__in=case_ids).order_by("id"):
        grouped[row.case_id].append(row)
    return [grouped[i] for i in case_ids]


async def _snapshot(info: Info) -> Snapshot:
    services = info.context.services
    assert services is not None
    return await services.routing.current()


# --- types ---------------------------------------------------------------------------------------


@strawberry.type(description="A WGS-84 point.")
class Location:
    latitude: float
    longitude: float


@strawberry.type(description="The point as the resident's device gave it.")
class OriginalLocation:
    latitude: float
    longitude: float
    crs: CoordinateSystem


@strawberry.type(name="Category")
class CategoryNode(relay.Node):
    id: relay.NodeID[int]
    code: str
    group: CategoryGroup
    name_zh: str
    name_en: str
    sla_policy: str
    home_related: bool = strawberry.field(description="Shown coarsened (about 200 m) on the public map.")
    after_photos_required: bool
    verification_required: bool
    duplicate_radius_m: float
    duplicate_window_hours: float
    evidence_schema: JSON = strawberry.field(description="The typed evidence fields a report may carry.")
    notice_zh: str | None
    notice_en: str | None
    active: bool

    @classmethod
    def from_model(cls, row: models.Category) -> CategoryNode:
        return cls(
            id=row.id,
            code=row.code,
            group=row.group,
            name_zh=row.name_zh,
            name_en=row.name_en,
            sla_policy=row.sla_policy,
            home_related=row.home_related,
            after_photos_required=row.after_photos_required,
            verification_required=row.verification_required,
            duplicate_radius_m=row.duplicate_radius_m,
            duplicate_window_hours=row.duplicate_window_hours,
            evidence_schema=row.evidence_schema,
            notice_zh=row.notice_zh,
            notice_en=row.notice_en,
            active=row.active,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[CategoryNode | None]:
        rows = await info.context.loaders.rows(models.Category).load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]


async def _category(info: Info, category_id: int) -> CategoryNode:
    row = await info.context.loaders.rows(models.Category).load(category_id)
    return CategoryNode.from_model(row)


async def _department(info: Info, department_id: int | None) -> DepartmentNode | None:
    if department_id is None:
        return None
    row = await info.context.loaders.rows(models.Department).load(department_id)
    return DepartmentNode.from_model(row) if row else None


@strawberry.type(description="A step in a case's life as its reporters see it: no names, no internal notes.")
class TimelineEntry:
    kind: str = strawberry.field(description="submit, route, triage, report_added, and later steps.")
    from_status: Status | None
    to_status: Status | None
    at: datetime


@strawberry.type(description="A case event with its actor, note and data; for the case's staff.")
class CaseEventEntry:
    kind: str
    from_status: Status | None
    to_status: Status | None
    note: str
    data: JSON
    actor_id: strawberry.ID | None
    at: datetime


@strawberry.type(description="A resident's rating of how a case was handled.")
class CaseFeedback:
    rating: int
    comment: str
    at: datetime


@strawberry.type(name="Case", description="The unit of work; visible in full to its reporters and staff.")
class CaseNode(relay.Node):
    id: relay.NodeID[int]
    reference: str
    status: Status
    version: int
    priority: Priority
    location: Location
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    reporter_count: int
    report_count: int
    rework_count: int = strawberry.field(description="Times it went back for rework (failed check, dispute).")
    resolution_note: str
    dispatched_at: datetime | None = strawberry.field(description="When a department first got it.")
    responded_at: datetime | None = strawberry.field(description="Accepted or returned by its department.")
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[models.Case]

    @classmethod
    def from_model(cls, row: models.Case) -> CaseNode:
        return cls(
            id=row.id,
            reference=row.reference,
            status=row.status,
            version=row.version,
            priority=row.priority,
            location=Location(latitude=row.latitude, longitude=row.longitude),
            response_due_at=row.response_due_at,
            resolution_due_at=row.resolution_due_at,
            reporter_count=row.reporter_count,
            report_count=row.report_count,
            rework_count=row.rework_count,
            resolution_note=row.resolution_note,
            dispatched_at=row.dispatched_at,
            responded_at=row.responded_at,
            resolved_at=row.resolved_at,
            closed_at=row.closed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _row=row,
        )

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await _category(info, self._row.category_id)

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        return await _department(info, self._row.department_id)

    def _staff(self, info: Info) -> bool:
        principal = info.context.principal
        return service.is_case_staff(principal.user if principal else None, self._row)

    async def _reported(self, info: Info) -> bool:
        principal = info.context.principal
        if principal is None:
            return False
        reports = await info.context.loaders.batch(_reports_of).load(self._row.id)
        return any(r.reporter_id == principal.user.id for r in reports)

    @strawberry.field(description="What the caller may do now: the buttons to show (inputs aside).")
    async def allowed_actions(self, info: Info) -> list[Action]:
        principal = info.context.principal
        if principal is None:
            return []
        category = await info.context.loaders.rows(models.Category).load(self._row.category_id)
        actor = casework.actor_of(principal.user, self._row, await self._reported(info))
        return allowed_actions(self._row.status, actor, category)

    @strawberry.field(description="The case this one was merged into, if it was.")
    async def merged_into(self, info: Info) -> CaseNode | None:
        if self._row.merged_into_id is None:
            return None
        row = await info.context.loaders.rows(models.Case).load(self._row.merged_into_id)
        return CaseNode.from_model(row) if row else None

    @strawberry.field(description="The reports in this case: all for its staff, a resident's own for them.")
    async def reports(self, info: Info) -> list[ReportNode]:
        principal = info.context.principal
        if principal is None:
            return []
        rows = await info.context.loaders.batch(_reports_of).load(self._row.id)
        if not self._staff(info):
            rows = [r for r in rows if r.reporter_id == principal.user.id]
        return [ReportNode.from_model(r) for r in rows]

    @strawberry.field(description="The photos of its reports the caller may see, first report first.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        rows = await info.context.loaders.batch(_reports_of).load(self._row.id)
        return await load_photos(info, [p for r in rows for p in r.photo_ids])

    @strawberry.field(description="The after-photos the department resolved it with.")
    async def resolution_photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, self._row.resolution_photo_ids)

    @strawberry.field(description="The staff member working it. Staff only.")
    async def assignee(self, info: Info) -> UserNode | None:
        if self._row.assignee_id is None or not self._staff(info):
            return None
        row = await info.context.loaders.rows(User).load(self._row.assignee_id)
        return UserNode.from_model(row) if row else None

    @strawberry.field(description="Residents' ratings: all for staff, the caller's own for a reporter.")
    async def feedback(self, info: Info) -> list[CaseFeedback]:
        principal = info.context.principal
        if principal is None:
            return []
        rows = await info.context.loaders.batch(_feedback_of).load(self._row.id)
        if not self._staff(info):
            rows = [r for r in rows if r.reporter_id == principal.user.id]
        return [CaseFeedback(rating=r.rating, comment=r.comment, at=r.updated_at) for r in rows]

    @strawberry.field(description="Why the case went where it went (rule, source, department). Staff only.")
    def routing_reason(self, info: Info) -> str | None:
        return self._row.routing_reason if self._staff(info) else None

    @strawberry.field(description="The routing rule that decided, or null for none. Staff only.")
    def routing_rule(self, info: Info) -> str | None:
        return self._row.routing_rule if self._staff(info) else None

    @strawberry.field(
        description="The SLA policy its deadlines run on, chosen when a department first got it (again when "
        "a correction re-routed it). Staff only."
    )
    def sla_policy(self, info: Info) -> str | None:
        return self._row.sla_policy if self._staff(info) else None

    @strawberry.field(description="What happened, in order, without names or internal notes.")
    async def timeline(self, info: Info) -> list[TimelineEntry]:
        events = await info.context.loaders.batch(_events_of).load(self._row.id)
        return [
            TimelineEntry(kind=e.kind, from_status=e.from_status, to_status=e.to_status, at=e.created_at)
            for e in events
        ]

    @strawberry.field(description="ON_TIME, APPROACHING or OVERDUE now; null when no deadline runs.")
    async def deadline_state(self, info: Info) -> DeadlineState | None:
        category = await info.context.loaders.rows(models.Category).load(self._row.category_id)
        return deadlines.deadline_state(self._row, category, clock.now())

    @strawberry.field(description="Requests for more time, newest first. Staff only; empty otherwise.")
    async def extensions(self, info: Info) -> list[DeadlineExtensionNode]:
        if not self._staff(info):
            return []
        rows = await info.context.loaders.batch(deadlines.extensions_of).load(self._row.id)
        return [DeadlineExtensionNode.from_model(r) for r in rows]

    @strawberry.field(description="The full event log with actors and notes. Staff only; empty otherwise.")
    async def events(self, info: Info) -> list[CaseEventEntry]:
        if not self._staff(info):
            return []
        events = await info.context.loaders.batch(_events_of).load(self._row.id)
        return [
            CaseEventEntry(
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=e.data,
                actor_id=relay.to_base64("User", e.actor_id) if e.actor_id else None,
                at=e.created_at,
            )
            for e in events
        ]

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[CaseNode | None]:
        ids = [int(i) for i in node_ids]
        principal = info.context.principal
        if principal is None:
            return [None] * len(ids)
        visible = await service.visible_case_ids(principal.user, ids)
        rows = {r.id: r for r in await models.Case.filter(id__in=list(visible))}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


def _photo_ids(ids: Sequence[int]) -> list[strawberry.ID]:
    return [strawberry.ID(relay.to_base64("Photo", i)) for i in ids]


@strawberry.type(name="Report", description="One resident's submission; only its reporter sees it here.")
class ReportNode(relay.Node):
    id: relay.NodeID[int]
    client_id: str
    description: str
    location: Location
    original_location: OriginalLocation
    accuracy_m: float | None
    observed_at: datetime
    evidence: JSON
    photo_ids: list[strawberry.ID]
    anonymous: bool
    contact_consent: bool
    created_at: datetime
    _category_id: strawberry.Private[int]
    _case_id: strawberry.Private[int]
    _photos: strawberry.Private[list[int]]

    @classmethod
    def from_model(cls, row: models.Report) -> ReportNode:
        return cls(
            id=row.id,
            client_id=row.client_id,
            description=row.description,
            location=Location(latitude=row.latitude, longitude=row.longitude),
            original_location=OriginalLocation(
                latitude=row.original_latitude, longitude=row.original_longitude, crs=row.crs
            ),
            accuracy_m=row.accuracy_m,
            observed_at=row.observed_at,
            evidence=row.evidence,
            photo_ids=_photo_ids(row.photo_ids),
            anonymous=row.anonymous,
            contact_consent=row.contact_consent,
            created_at=row.created_at,
            _category_id=row.category_id,
            _case_id=row.case_id,
            _photos=row.photo_ids,
        )

    @strawberry.field(description="Its photos the caller may see, with their URLs.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, self._photos)

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await _category(info, self._category_id)

    @strawberry.field(description="The case this report belongs to: its status, department and deadlines.")
    async def case(self, info: Info) -> CaseNode:
        row = await info.context.loaders.rows(models.Case).load(self._case_id)
        return CaseNode.from_model(row)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[ReportNode | None]:
        ids = [int(i) for i in node_ids]
        principal = info.context.principal
        if principal is None:
            return [None] * len(ids)
        rows = {r.id: r for r in await models.Report.filter(id__in=ids, reporter_id=principal.user.id)}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


@strawberry.type(
    name="PublicCase",
    description="A case as anyone may see it on the map: no reporter, no evidence metadata, the "
    "location coarsened to about 200 m for categories reported at homes, photos as public derivatives.",
)
class PublicCaseNode(relay.Node):
    id: relay.NodeID[int]
    reference: str
    status: Status
    location: Location
    reporter_count: int
    reported_on: datetime = strawberry.field(description="The hour the case was opened (not the minute).")
    _category_id: strawberry.Private[int]
    _department_id: strawberry.Private[int | None]
    _case_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Case) -> PublicCaseNode:
        return cls(
            id=row.id,
            reference=row.reference,
            status=row.status,
            location=Location(latitude=row.public_latitude, longitude=row.public_longitude),
            reporter_count=row.reporter_count,
            reported_on=row.created_at.replace(minute=0, second=0, microsecond=0),
            _category_id=row.category_id,
            _department_id=row.department_id,
            _case_id=row.id,
        )

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await _category(info, self._category_id)

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        return await _department(info, self._department_id)

    @strawberry.field(description="Photo ids whose metadata-free derivatives are public.")
    async def photo_ids(self, info: Info) -> list[strawberry.ID]:
        photos = await info.context.loaders.batch(_photos_of).load(self._case_id)
        return _photo_ids(photos)

    @strawberry.field(description="Its public photos, with the URLs of their metadata-free renditions.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, await info.context.loaders.batch(_photos_of).load(self._case_id))

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[PublicCaseNode | None]:
        ids = [int(i) for i in node_ids]
        rows = {r.id: r for r in await models.Case.filter(id__in=ids, public=True)}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


async def _photos_of(case_ids: list[int]) -> list[list[int]]:
    grouped: dict[int, list[int]] = {i: [] for i in case_ids}
    for case_id, photo_ids in (
        await models.Report.filter(case_id__in=case_ids).order_by("id").values_list("case_id", "photo_ids")
    ):
        grouped[case_id].extend(photo_ids)
    return [grouped[i] for i in case_ids]


@strawberry.type(description="An open case near a point, to join instead of filing a new one.")
class NearbyCase:
    case: PublicCaseNode
    distance_m: float = strawberry.field(description="To the case's public location, rounded to 10 m.")


@strawberry.type(name="Jurisdiction")
class JurisdictionNode(ModelNode[models.Jurisdiction]):
    model = models.Jurisdiction
    id: relay.NodeID[int]
    code: str
    name: str
    geometry: JSON

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[models.Jurisdiction]
    ) -> Sequence[models.Jurisdiction]:
        return rows  # the map of jurisdictions is public data


@strawberry.type(name="RoutingRule", description="One row of the routing table, with the rule it cites.")
class RoutingRuleNode(relay.Node):
    id: relay.NodeID[int]
    code: str
    scope: RuleScope
    category: str
    department_kind: str | None
    department_code: str | None
    jurisdiction_code: str | None
    window: JSON | None
    conditions: JSON
    priority: int
    source: str

    @classmethod
    def from_model(cls, row: models.RoutingRule) -> RoutingRuleNode:
        return cls(
            id=row.id,
            code=row.code,
            scope=row.scope,
            category=row.category,
            department_kind=row.department_kind,
            department_code=row.department_code,
            jurisdiction_code=row.jurisdiction_code,
            window=row.window,
            conditions=row.conditions,
            priority=row.priority,
            source=row.source,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[RoutingRuleNode | None]:
        if not info.context.has_role(Role.ADMIN, Role.DISPATCHER):
            return [None] * len(node_ids)
        ids = [int(i) for i in node_ids]
        rows = {r.id: r for r in await models.RoutingRule.filter(id__in=ids)}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]
