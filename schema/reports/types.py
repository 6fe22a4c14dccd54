"""Output types of reports and cases (the queue's light rows are in `queue_types`), and their fields.

Who may see a row, or a field of it, is `reports.access`'s answer; the batched reads behind the lists
are `reports.reads`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from identity import audit
from identity.models import AccessKind, Role
from identity.models import User as UserModel
from identity.service import Principal
from kernel import clock
from kernel.geo import CoordinateSystem
from reports import access, anonymity, casework, deadlines, models, reads, statistics, transparency
from reports.categories import CategoryGroup
from reports.lifecycle import Action, Status, allowed_actions
from reports.models import ExtensionStatus, Priority, RuleScope
from reports.sla import DeadlineState
from reports.store import Snapshot
from schema.context import Info
from schema.identity.types import DepartmentNode, UserNode
from schema.media.types import PhotoNode, load_photos
from schema.node import ModelNode


async def routing_snapshot(info: Info) -> Snapshot:
    """The routing data (categories, departments, rules) as this process has compiled it."""
    services = info.context.services
    assert services is not None
    return await services.routing.current()


def global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


def _global_ids(type_name: str, ids: Sequence[int]) -> list[strawberry.ID]:
    return [global_id(type_name, i) for i in ids]


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
class CategoryNode(ModelNode[models.Category]):
    model = models.Category
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
    async def visible(
        cls, principal: Principal | None, rows: Sequence[models.Category]
    ) -> Sequence[models.Category]:
        return access.visible_categories(principal, rows)


async def category_node(info: Info, category_id: int) -> CategoryNode:
    (node,) = await CategoryNode.resolve_nodes(info=info, node_ids=[str(category_id)])
    assert node is not None  # public, and kept while anything refers to it (RESTRICT)
    return node


async def department_node(info: Info, department_id: int | None) -> DepartmentNode | None:
    # Loaded and checked here rather than through DepartmentNode.resolve_nodes, so that the departments
    # of a whole page of cases take one query (the rows loader) and no check of their own per case.
    if department_id is None:
        return None
    row = await info.context.loaders.rows(models.Department).load(department_id)
    if row is None or not access.visible_department_rows(info.context.principal, [row]):
        return None
    return DepartmentNode.from_model(row)


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
    actor_id: strawberry.ID | None = strawberry.field(
        description="The account that acted; null for the system and for residents who reported the "
        "case anonymously (see `actor`)."
    )
    actor: str | None = strawberry.field(
        description='A resident\'s pseudonym on this case ("reporter 2"), the same on their reports; '
        "null for staff and the system."
    )
    at: datetime


@strawberry.type(description="A resident's rating of how a case was handled.")
class CaseFeedback:
    rating: int
    comment: str
    at: datetime


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
            id=global_id("DeadlineExtension", row.id),
            amount=row.amount,
            reason=row.reason,
            status=row.status,
            decision_note=row.decision_note,
            requested_at=row.created_at,
            decided_at=row.decided_at,
        )


@strawberry.type(name="Case", description="The unit of work; visible in full to its reporters and staff.")
class CaseNode(ModelNode[models.Case]):
    model = models.Case
    id: relay.NodeID[int]
    reference: str
    status: Status
    version: int
    priority: Priority
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
    async def visible(cls, principal: Principal | None, rows: Sequence[models.Case]) -> list[models.Case]:
        return await access.visible_cases(principal, rows)

    @strawberry.field
    def location(self) -> Location:
        return Location(latitude=self._row.latitude, longitude=self._row.longitude)

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await category_node(info, self._row.category_id)

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        return await department_node(info, self._row.department_id)

    def _staff(self, info: Info) -> bool:
        principal = info.context.principal
        return access.is_case_staff(principal.user if principal else None, self._row)

    async def _reports(self, info: Info) -> list[models.Report]:
        return await info.context.loaders.batch(reads.reports_of_cases).load(self._row.id)

    @strawberry.field(description="What the caller may do now: the buttons to show (inputs aside).")
    async def allowed_actions(self, info: Info) -> list[Action]:
        principal = info.context.principal
        if principal is None:
            return []
        category = await info.context.loaders.rows(models.Category).load(self._row.category_id)
        reported = any(r.reporter_id == principal.user.id for r in await self._reports(info))
        actor = casework.actor_of(principal.user, self._row, reported)
        return allowed_actions(self._row.status, actor, category)

    @strawberry.field(description="The case this one was merged into, if it was.")
    async def merged_into(self, info: Info) -> CaseNode | None:
        if self._row.merged_into_id is None:
            return None
        (node,) = await CaseNode.resolve_nodes(info=info, node_ids=[str(self._row.merged_into_id)])
        return node

    @strawberry.field(description="The reports in this case: all for its staff, a resident's own for them.")
    async def reports(self, info: Info) -> list[ReportNode]:
        principal = info.context.principal
        rows = access.seen_on_case(principal, self._row, await self._reports(info))
        # A non-anonymized report read by staff is in the access log (identity.audit).
        named = [r.id for r in rows if not r.anonymous and principal and r.reporter_id != principal.user.id]
        await audit.note_read(principal, AccessKind.REPORT, "report", *named)
        return [ReportNode.from_model(r) for r in rows]

    @strawberry.field(description="The photos of its reports the caller may see, first report first.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, [p for r in await self._reports(info) for p in r.photo_ids])

    @strawberry.field(description="The after-photos the department resolved it with.")
    async def resolution_photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, self._row.resolution_photo_ids)

    @strawberry.field(description="The staff member working it. Staff only.")
    async def assignee(self, info: Info) -> UserNode | None:
        if self._row.assignee_id is None or not self._staff(info):
            return None
        (node,) = await UserNode.resolve_nodes(info=info, node_ids=[str(self._row.assignee_id)])
        return node

    @strawberry.field(description="Residents' ratings: all for staff, the caller's own for a reporter.")
    async def feedback(self, info: Info) -> list[CaseFeedback]:
        rows = await info.context.loaders.batch(reads.feedback_of_cases).load(self._row.id)
        rows = access.seen_on_case(info.context.principal, self._row, rows)
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
        events = await info.context.loaders.batch(reads.events_of_cases).load(self._row.id)
        return [
            TimelineEntry(kind=e.kind, from_status=e.from_status, to_status=e.to_status, at=e.created_at)
            for e in events
        ]

    @strawberry.field(description="ON_TIME, APPROACHING or OVERDUE now; null when no deadline runs.")
    async def deadline_state(self, info: Info) -> DeadlineState | None:
        category = await info.context.loaders.rows(models.Category).load(self._row.category_id)
        assert category is not None  # kept while a case refers to it (RESTRICT)
        return deadlines.deadline_state(self._row, category, clock.now())

    @strawberry.field(description="Requests for more time, newest first. Staff only; empty otherwise.")
    async def extensions(self, info: Info) -> list[DeadlineExtensionNode]:
        if not self._staff(info):
            return []
        rows = await info.context.loaders.batch(reads.extensions_of_cases).load(self._row.id)
        return [DeadlineExtensionNode.from_model(r) for r in rows]

    @strawberry.field(description="The full event log with actors and notes. Staff only; empty otherwise.")
    async def events(self, info: Info) -> list[CaseEventEntry]:
        if not self._staff(info):
            return []
        events = await info.context.loaders.batch(reads.events_of_cases).load(self._row.id)
        reports = await self._reports(info)
        labels = anonymity.reporter_labels(reports)
        hidden = anonymity.anonymous_reporters(reports)
        # An actor who is no reporter of the case now (their report moved by a merge or split) is shown only
        # when their account is not a resident's: the conservative answer for a reporter.
        others = sorted({e.actor_id for e in events if e.actor_id is not None and e.actor_id not in labels})
        users = await info.context.loaders.rows(UserModel).load_many(others) if others else []
        hidden |= {
            i for i, user in zip(others, users, strict=True) if user is None or user.role == Role.CITIZEN
        }
        shown = {e.actor_id for e in events if e.actor_id in labels and e.actor_id not in hidden}
        await audit.note_read(
            info.context.principal, AccessKind.REPORTER_IDENTITY, "user", *sorted(i for i in shown if i)
        )
        return [
            CaseEventEntry(
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=JSON(e.data),
                actor_id=global_id("User", e.actor_id) if e.actor_id and e.actor_id not in hidden else None,
                actor=labels.get(e.actor_id, "a resident" if e.actor_id in hidden else None)
                if e.actor_id
                else None,
                at=e.created_at,
            )
            for e in events
        ]


@strawberry.type(name="Report", description="One resident's submission; only its reporter sees it here.")
class ReportNode(ModelNode[models.Report]):
    model = models.Report
    id: relay.NodeID[int]
    client_id: str
    description: str
    accuracy_m: float | None
    observed_at: datetime
    evidence: JSON
    anonymous: bool
    contact_consent: bool
    created_at: datetime
    _row: strawberry.Private[models.Report]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[models.Report]) -> list[models.Report]:
        return access.visible_reports(principal, rows)

    @strawberry.field
    def location(self) -> Location:
        return Location(latitude=self._row.latitude, longitude=self._row.longitude)

    @strawberry.field(
        description="Its reporter's pseudonym on its case (\"reporter 2\"): how the case's staff tell "
        "reporters apart without seeing accounts; stable within the case, unrelated across cases."
    )
    async def reporter(self, info: Info) -> str:
        reports = await info.context.loaders.batch(reads.reports_of_cases).load(self._row.case_id)
        return anonymity.reporter_labels(reports).get(self._row.reporter_id, "reporter")

    @strawberry.field
    def original_location(self) -> OriginalLocation:
        row = self._row
        return OriginalLocation(latitude=row.original_latitude, longitude=row.original_longitude, crs=row.crs)

    @strawberry.field
    def photo_ids(self) -> list[strawberry.ID]:
        return _global_ids("Photo", self._row.photo_ids)

    @strawberry.field(description="Its photos the caller may see, with their URLs.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, self._row.photo_ids)

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await category_node(info, self._row.category_id)

    @strawberry.field(description="The case this report belongs to: its status, department and deadlines.")
    async def case(self, info: Info) -> CaseNode:
        # Whoever sees a report sees its case (its reporter reported it; the case's staff see both), so
        # a page of reports takes no check per case (reports.access).
        row = await info.context.loaders.rows(models.Case).load(self._row.case_id)
        assert row is not None  # kept while a report refers to it (RESTRICT)
        return CaseNode.from_model(row)


@strawberry.type
class PublicCaseFacts:
    """Where, when and what of a case, as anyone may see it (the public location, the hour): shared by
    the public map's case and a chief's view of the cases in their areas."""

    _row: strawberry.Private[models.Case]

    @strawberry.field
    def location(self) -> Location:
        return Location(latitude=self._row.public_latitude, longitude=self._row.public_longitude)

    @strawberry.field(description="The hour the case was opened (not the minute).")
    def reported_on(self) -> datetime:
        return self._row.created_at.replace(minute=0, second=0, microsecond=0)

    @strawberry.field
    async def category(self, info: Info) -> CategoryNode:
        return await category_node(info, self._row.category_id)

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        return await department_node(info, self._row.department_id)


@strawberry.type(
    name="PublicCase",
    description="A case as anyone may see it on the map: no reporter, no evidence metadata, the "
    "location coarsened to about 200 m for categories reported at homes, photos as public derivatives.",
)
class PublicCaseNode(PublicCaseFacts, ModelNode[models.Case]):
    model = models.Case
    id: relay.NodeID[int]
    reference: str
    status: Status
    reporter_count: int
    _row: strawberry.Private[models.Case]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[models.Case]) -> list[models.Case]:
        return access.visible_public_cases(principal, rows)

    async def _photos(self, info: Info) -> list[int]:
        return await info.context.loaders.batch(reads.photos_of_cases).load(self._row.id)

    @strawberry.field(description="Photo ids whose metadata-free derivatives are public.")
    async def photo_ids(self, info: Info) -> list[strawberry.ID]:
        return _global_ids("Photo", await self._photos(info))

    @strawberry.field(description="Its public photos, with the URLs of their metadata-free renditions.")
    async def photos(self, info: Info) -> list[PhotoNode]:
        return await load_photos(info, await self._photos(info))

    def _handling(self) -> transparency.PublicHandling | None:
        return transparency.public_handling(self._row)

    @strawberry.field(
        description="The day (in the city's timezone) it was resolved, while it stands resolved."
    )
    def resolved_on(self) -> date | None:
        handling = self._handling()
        return None if handling is None else handling.resolved_on

    @strawberry.field(description="The day (in the city's timezone) it was closed.")
    def closed_on(self) -> date | None:
        handling = self._handling()
        return None if handling is None else handling.closed_on

    @strawberry.field(description="Whether its resolution came by its deadline; null: not resolved or none.")
    def resolved_on_time(self) -> bool | None:
        handling = self._handling()
        return None if handling is None else handling.resolved_on_time

    @strawberry.field(
        description="The outcome in words, once resolved: dates and deadline, never staff notes."
    )
    def resolution_summary(self) -> str | None:
        handling = self._handling()
        return None if handling is None else handling.resolution_summary

    @strawberry.field(description="Its handling in words, step by step with days (Open311's status_notes).")
    def status_notes(self) -> str | None:
        handling = self._handling()
        return None if handling is None else handling.status_notes


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
        return access.visible_jurisdictions(principal, rows)


@strawberry.type(name="RoutingRule", description="One row of the routing table, with the rule it cites.")
class RoutingRuleNode(ModelNode[models.RoutingRule]):
    model = models.RoutingRule
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
    async def visible(
        cls, principal: Principal | None, rows: Sequence[models.RoutingRule]
    ) -> Sequence[models.RoutingRule]:
        return access.visible_routing_rules(principal, rows)


@strawberry.type(description="A change to a case, as live updates deliver it.")
class CaseUpdate:
    kind: str = strawberry.field(description="The step or event: accept, resolve, assigned, escalation...")
    case: CaseNode | None = strawberry.field(
        description="The case as it is now; null when the subscriber may no longer see it (e.g. it left "
        "the department's queue)."
    )
    case_id: strawberry.ID


@strawberry.type(
    description="The figures of one group, or of all groups (`total`); definitions in docs/statistics.md."
)
class CaseStatisticsRow:
    _row: strawberry.Private[statistics.Figures]
    total: bool = strawberry.field(description="The row for everything asked, each case counted once.")
    received: int
    accepted: int
    returned: int
    resolved: int
    closed: int
    reopened: int
    responses: int = strawberry.field(description="Accepts and returns with a due time: the denominator.")
    on_time_acceptance_rate: float | None
    resolutions: int = strawberry.field(description="Resolutions with a due time: the denominator.")
    on_time_resolution_rate: float | None = strawberry.field(description="按期结案率, 0..1.")
    handling_hours_median: float | None
    handling_hours_p90: float | None
    ratings: int
    satisfaction_rate: float | None = strawberry.field(description="Ratings of 4 or 5 among ratings, 0..1.")
    overdue_now: int

    @classmethod
    def from_figures(cls, row: statistics.Figures) -> CaseStatisticsRow:
        # Every field but the row itself is the figure of the same name.
        names = [f.name for f in dataclasses.fields(cast(Any, cls)) if f.init and f.name != "_row"]
        return cls(_row=row, **{name: getattr(row, name) for name in names})

    @strawberry.field(description="The group's department, or on the total row the one asked about.")
    async def department(self, info: Info) -> DepartmentNode | None:
        return await department_node(info, self._row.department_id)

    @strawberry.field(description="The group's category, or on the total row the one asked about.")
    async def category(self, info: Info) -> CategoryNode | None:
        category_id = self._row.category_id
        return None if category_id is None else await category_node(info, category_id)


@strawberry.type(
    description="One department's public figures for one month of the city's calendar; definitions in "
    "docs/statistics.md (Public transparency)."
)
class DepartmentMonthFigures:
    _row: strawberry.Private[transparency.DepartmentMonth]
    month: str = strawberry.field(description="YYYY-MM.")
    received: int = strawberry.field(description="Cases routed or re-routed to the department.")
    resolved: int = strawberry.field(description="Cases the department resolved.")
    resolutions: int = strawberry.field(description="Resolutions that had a deadline: the denominator.")
    resolved_on_time: int = strawberry.field(description="Of those resolutions, the ones made by it.")
    on_time_resolution_rate: float | None = strawberry.field(description="按期结案率, 0..1.")
    ratings: int = strawberry.field(description="Residents' ratings first given in the month.")
    rating_average: float | None = strawberry.field(description="Their average, 1..5.")
    satisfaction_rate: float | None = strawberry.field(description="Ratings of 4 or 5 among ratings, 0..1.")

    @classmethod
    def of(cls, row: transparency.DepartmentMonth) -> DepartmentMonthFigures:
        figures = row.figures
        return cls(
            _row=row,
            month=row.month.strftime("%Y-%m"),
            received=figures.received,
            resolved=figures.resolved,
            resolutions=figures.resolutions,
            resolved_on_time=figures.resolutions_on_time,
            on_time_resolution_rate=figures.on_time_resolution_rate,
            ratings=figures.ratings,
            rating_average=figures.rating_average,
            satisfaction_rate=figures.satisfaction_rate,
        )

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode:
        node = await department_node(info, self._row.department_id)
        assert node is not None  # the city's directory is public, and departments are kept (RESTRICT)
        return node
