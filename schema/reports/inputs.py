"""Input types of reports, case work, queues, deadlines, statistics and the routing data."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from kernel.errors import invalid
from kernel.geo import BBox, CoordinateSystem
from reports import casework, queue, service, statistics
from reports.lifecycle import Action, Status, TransitionInput
from reports.models import Priority, RuleScope
from reports.queue import QueueFilter
from reports.statistics import Dimension
from schema.node import decode_id

# The steps `caseTransition` takes; routing, merging and the system's own steps have their own doors.
DIRECT_ACTIONS = frozenset(
    {
        Action.ACCEPT,
        Action.RETURN,
        Action.START,
        Action.RESOLVE,
        Action.VERIFY_PASS,
        Action.VERIFY_FAIL,
        Action.CONFIRM,
        Action.DISPUTE,
        Action.REJECT,
    }
)


def _photo_ids(ids: list[strawberry.ID]) -> list[int]:
    return [decode_id(p, "Photo", "input", "photoIds", str(i)) for i, p in enumerate(ids)]


def _optional_id(value: strawberry.ID | None, type_name: str, *field: str) -> int | None:
    return None if value is None else decode_id(value, type_name, *field)


@strawberry.input(description="A point as the device gives it; stored as WGS-84 with the original kept.")
class LocationInput:
    latitude: float
    longitude: float
    crs: CoordinateSystem = CoordinateSystem.WGS84
    accuracy_m: float | None = strawberry.field(default=None, description="The device's accuracy radius.")

    def to_domain(self) -> service.Location:
        return service.Location(self.latitude, self.longitude, self.crs, self.accuracy_m)


@strawberry.input
class SubmitReportInput:
    client_id: str = strawberry.field(
        description="Generated once per report on the device (e.g. a UUID); a retry with it returns the "
        "first result, and the same id with other content is a CONFLICT."
    )
    category_code: str
    location: LocationInput
    description: str = ""
    observed_at: datetime | None = strawberry.field(
        default=None, description="When it happened; now if null."
    )
    evidence: JSON | None = strawberry.field(
        default=None, description="Fields of the category's evidence schema."
    )
    photo_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="0 to 9 uploaded photos."
    )
    anonymous: bool = strawberry.field(default=False, description="Hide who reported from staff.")
    contact_consent: bool = strawberry.field(default=False, description="Staff may contact the resident.")
    join_case: strawberry.ID | None = strawberry.field(
        default=None, description="'Me too': add this report to a case from nearbyCases."
    )

    def to_domain(self) -> service.Submission:
        join_case = _optional_id(self.join_case, "PublicCase", "input", "joinCase")
        return service.Submission(
            client_id=self.client_id,
            category_code=self.category_code,
            location=self.location.to_domain(),
            description=self.description,
            observed_at=self.observed_at,
            evidence=self.evidence,
            photo_ids=_photo_ids(self.photo_ids),
            anonymous=self.anonymous,
            contact_consent=self.contact_consent,
            join_case_id=join_case,
        )


@strawberry.input
class BBoxInput:
    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float

    def to_domain(self) -> BBox:
        return BBox(self.min_latitude, self.min_longitude, self.max_latitude, self.max_longitude)


@strawberry.input
class CategoryUpdateInput:
    code: str
    name_zh: str | None = None
    name_en: str | None = None
    sla_policy: str | None = None
    evidence_schema: JSON | None = None
    home_related: bool | None = None
    after_photos_required: bool | None = None
    verification_required: bool | None = None
    duplicate_radius_m: float | None = None
    duplicate_window_hours: float | None = None
    notice_zh: str | None = None
    notice_en: str | None = None
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """Every field but the code, by its column name; unset (None) ones change nothing."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "code"}


@strawberry.input
class DepartmentUpsertInput:
    code: str
    name: str
    kind: str
    jurisdiction_code: str | None = None


@strawberry.input
class JurisdictionImportInput:
    geojson: JSON = strawberry.field(
        description="A FeatureCollection of (Multi)Polygons in WGS-84 with `code` and `name` properties."
    )


@strawberry.input
class RoutingRuleUpsertInput:
    code: str
    scope: RuleScope
    category: str = strawberry.field(description="A category code or '<group>.*'.")
    source: str = strawberry.field(description="The regulation and article the rule follows.")
    department_kind: str | None = None
    department_code: str | None = None
    jurisdiction_code: str | None = None
    window: JSON | None = strawberry.field(
        default=None, description='e.g. {"from": "22:00", "to": "06:00", "timezone": "Asia/Shanghai"}'
    )
    conditions: JSON | None = strawberry.field(
        default=None, description='e.g. [{"field": "measured_db", "op": ">=", "value": 70}]'
    )
    priority: int = 0


@strawberry.input
class RoutingRuleDeleteInput:
    code: str


@strawberry.input
class CaseTransitionInput:
    case_id: strawberry.ID
    action: Action
    expected_version: int | None = strawberry.field(
        default=None, description="The version the caller saw; a different current version answers CONFLICT."
    )
    reason: str | None = strawberry.field(default=None, description="Required to return, reject or dispute.")
    note: str | None = strawberry.field(default=None, description="Resolution note (required to resolve).")
    photo_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description="After-photos to resolve (where the category asks), or the inspector's photo to verify.",
    )

    def to_domain(self) -> tuple[int, casework.Step]:
        """The case and the step asked for."""
        action = Action(self.action.value)
        if action not in DIRECT_ACTIONS:
            raise invalid("Use caseRoute or caseMerge for this step.", "input", "action")
        given = TransitionInput(reason=self.reason, note=self.note, photo_ids=_photo_ids(self.photo_ids))
        step = casework.Step(action, self.expected_version, given)
        return decode_id(self.case_id, "Case", "input", "caseId"), step


@strawberry.input
class CaseRouteInput:
    case_id: strawberry.ID
    department_code: str
    note: str | None = None
    expected_version: int | None = None


@strawberry.input
class CaseMergeInput:
    case_id: strawberry.ID = strawberry.field(description="The duplicate; it ends MERGED.")
    into_case: strawberry.ID = strawberry.field(description="The case that keeps the reports.")
    note: str | None = None
    expected_version: int | None = None


@strawberry.input
class ReportSplitInput:
    report_id: strawberry.ID
    note: str | None = None


@strawberry.input
class CaseCategoryChangeInput:
    case_id: strawberry.ID
    category_code: str
    note: str | None = None


@strawberry.input
class CasePrioritySetInput:
    case_id: strawberry.ID
    priority: Priority
    note: str | None = None


@strawberry.input
class CaseRateInput:
    case_id: strawberry.ID
    rating: int = strawberry.field(description="1 (bad) to 5 (very good).")
    comment: str | None = None


@strawberry.input
class CaseExtensionRequestInput:
    case_id: strawberry.ID
    amount: float = strawberry.field(
        description="More time, in the unit of the case's resolution deadline (whole working days where it "
        "counts working days)."
    )
    reason: str


@strawberry.input
class CaseExtensionDecideInput:
    extension_id: strawberry.ID
    approve: bool
    note: str | None = None


@strawberry.input(description="A period of whole days in the city's timezone, [from, to), and a scope.")
class CaseStatisticsInput:
    from_: date = strawberry.field(name="from", description="The first day counted.")
    to: date = strawberry.field(description="The day after the last one counted.")
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="One department only; staff always get their own."
    )
    category_id: strawberry.ID | None = None
    group_by: list[Dimension] = strawberry.field(
        default_factory=lambda: [statistics.Dimension.DEPARTMENT],
        description="Empty: the total row only.",
    )

    def to_domain(self) -> statistics.StatisticsQuery:
        return statistics.StatisticsQuery(
            start=self.from_,
            end=self.to,
            department_id=_optional_id(self.department_id, "Department", "input", "departmentId"),
            category_id=_optional_id(self.category_id, "Category", "input", "categoryId"),
            group_by=frozenset(self.group_by),
        )


@strawberry.input(description="Every given condition must hold.")
class CaseQueueFilter:
    statuses: list[Status] | None = strawberry.field(
        default=None,
        description="Default: the statuses a department works in (ROUTED, ACCEPTED, IN_PROGRESS, "
        "REOPENED); TRIAGE and RETURNED for the triage queue.",
    )
    category_code: str | None = None
    priorities: list[Priority] | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="True: its active due time has passed; false: it has not (or none)."
    )
    due_before: datetime | None = strawberry.field(default=None, description="Active due time before this.")
    bbox: BBoxInput | None = None
    text: str | None = strawberry.field(default=None, description="In the summary or the reference.")

    def to_domain(self) -> QueueFilter:
        return QueueFilter(
            statuses=[Status(s.value) for s in self.statuses] if self.statuses is not None else None,
            category_code=self.category_code,
            priorities=self.priorities,
            overdue=self.overdue,
            due_before=self.due_before,
            bbox=self.bbox.to_domain() if self.bbox else None,
            text=self.text,
        )


@strawberry.input
class CaseAssignInput:
    case_id: strawberry.ID
    assignee_id: strawberry.ID | None = strawberry.field(
        description="A staff member of the case's department; null takes the case back from its assignee."
    )


@strawberry.input
class CaseAcceptItemInput:
    case_id: strawberry.ID
    expected_version: int | None = None


@strawberry.input
class CasesAcceptInput:
    cases: list[CaseAcceptItemInput] = strawberry.field(description=f"1 to {queue.MAX_BULK_ACCEPT} cases.")

    def to_domain(self) -> list[queue.AcceptItem]:
        if not 1 <= len(self.cases) <= queue.MAX_BULK_ACCEPT:
            raise invalid(f"Give 1 to {queue.MAX_BULK_ACCEPT} cases.", "input", "cases")
        return [
            queue.AcceptItem(
                decode_id(item.case_id, "Case", "input", "cases", str(i), "caseId"), item.expected_version
            )
            for i, item in enumerate(self.cases)
        ]
