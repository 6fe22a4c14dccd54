"""Reporting up the chain (上报), assigning to a department (交办), following the cases, and the
chiefs' read-only view of residents' cases in their areas. The rules are patrols.escalation's and
patrols.area_cases' (with reports.access deciding what of a case shows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity.models import User as UserModel
from identity.service import Principal
from kernel import clock
from patrols import area_cases, escalation
from patrols.chain_models import Escalation, EscalationStatus
from patrols.recording import local_date
from patrols.rules import ChiefLevel
from reports.lifecycle import Status
from reports.models import Case
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.identity.types import UserNode
from schema.node import ModelNode, decode_id
from schema.pagination import (
    Connection,
    check_page_size,
    decode_cursor,
    encode_cursor,
    keyset_page,
    page_info,
)
from schema.patrols.types import ObservationNode, PatrolAreaNode
from schema.reports.types import CaseNode, DepartmentNode, PublicCaseFacts, department_node

strawberry.enum(
    EscalationStatus,
    name="EscalationStatus",
    description="REPORTED: waiting to be assigned. ASSIGNED: given to a department; see caseStatus.",
)

CLOSED_STATUSES = (Status.CLOSED, Status.REJECTED, Status.MERGED)


def river_buffer_m(info: Info) -> float:
    services = info.context.services
    settings = services.settings if services is not None else None
    return float(getattr(settings, "river_case_buffer_m", area_cases.DEFAULT_RIVER_BUFFER_M))


async def _user(info: Info, user_id: int | None) -> UserNode | None:
    if user_id is None:
        return None
    row = await info.context.loaders.rows(UserModel).load(user_id)
    return UserNode.from_model(row) if row else None


@strawberry.type(
    name="Escalation",
    description="A problem a chief reported up the chain (上报) and its assignment to a department (交办). "
    "Seen by its sender, the chiefs above the sender and the chief office of its area.",
)
class EscalationNode(ModelNode[Escalation]):
    model = Escalation
    id: relay.NodeID[int]
    status: EscalationStatus
    note: str
    from_level: ChiefLevel
    to_level: ChiefLevel
    case_reference: str | None
    deadline: datetime | None = strawberry.field(description="The resolution deadline the order set.")
    assigned_at: datetime | None
    assignment_note: str
    created_at: datetime
    _row: strawberry.Private[Escalation]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Escalation]) -> list[Escalation]:
        return await escalation.visible_escalations(principal, list(rows))

    async def _case(self, info: Info) -> Case | None:
        if self._row.case_id is None:
            return None
        return await info.context.loaders.rows(Case).load(self._row.case_id)

    @strawberry.field
    async def from_chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.from_chief_id)

    @strawberry.field
    async def to_chief(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.to_chief_id)

    @strawberry.field
    async def assigned_by(self, info: Info) -> UserNode | None:
        return await _user(info, self._row.assigned_by_id)

    @strawberry.field
    async def area(self, info: Info) -> PatrolAreaNode | None:
        (node,) = await PatrolAreaNode.resolve_nodes(info=info, node_ids=[str(self._row.area_id)])
        return node

    @strawberry.field(description="The observation reported up, where the caller may see it.")
    async def observation(self, info: Info) -> ObservationNode | None:
        if self._row.observation_id is None:
            return None
        (node,) = await ObservationNode.resolve_nodes(info=info, node_ids=[str(self._row.observation_id)])
        return node

    @strawberry.field(description="The department it was assigned to.")
    async def department(self, info: Info) -> DepartmentNode | None:
        return await department_node(info, self._row.department_id)

    @strawberry.field(description="Its case, where the caller may see it in full (reporters, its staff).")
    async def case(self, info: Info) -> CaseNode | None:
        if self._row.case_id is None:
            return None
        (node,) = await CaseNode.resolve_nodes(info=info, node_ids=[str(self._row.case_id)])
        return node

    @strawberry.field(description="The status of its case, once there is one.")
    async def case_status(self, info: Info) -> Status | None:
        case = await self._case(info)
        return case.status if case else None

    @strawberry.field(description="When its case was resolved by the department (the latest time).")
    async def resolved_at(self, info: Info) -> datetime | None:
        case = await self._case(info)
        return case.resolved_at if case else None

    @strawberry.field(description="When its case was closed.")
    async def closed_at(self, info: Info) -> datetime | None:
        case = await self._case(info)
        return case.closed_at if case else None

    @strawberry.field(description="Past the ordered deadline and not resolved by it.")
    async def overdue(self, info: Info) -> bool:
        deadline = self._row.deadline
        case = await self._case(info)
        if deadline is None or case is None:
            return False
        if case.resolved_at is not None and case.status in (
            Status.RESOLVED,
            Status.VERIFIED,
            *CLOSED_STATUSES,
        ):
            return case.resolved_at > deadline
        return clock.now() > deadline


@strawberry.type(
    description="A resident's case in a chief's area, read only: no reporter, description, photos or "
    "exact point (the public point is shown)."
)
class AreaCase(PublicCaseFacts):
    reference: str
    status: Status
    reporter_count: int
    resolution_due_at: datetime | None
    _row: strawberry.Private[Case]

    @classmethod
    def of(cls, row: Case) -> AreaCase:
        return cls(
            reference=row.reference,
            status=row.status,
            reporter_count=row.reporter_count,
            resolution_due_at=row.resolution_due_at,
            _row=row,
        )


@strawberry.type(description="A page of residents' cases in the caller's areas, newest first.")
class AreaCaseConnection:
    nodes: list[AreaCase]
    page_info: relay.PageInfo


@strawberry.type
class EscalationQuery:
    @strawberry.field(
        description="Escalations the caller follows, newest first: sent, received, their subordinates' "
        "(chiefs above the sender) and their office's (chief office staff); each with its case's status."
    )
    async def followed_escalations(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: EscalationStatus | None = None,
    ) -> Connection[EscalationNode]:
        follower = await escalation.follower_of(info.context.require_principal())
        return await keyset_page(
            follower.followed(status),
            order=["-created_at", "-id"],
            first=first,
            after=after,
            to_node=EscalationNode.from_model,
        )

    @strawberry.field(
        description="Residents' cases located in the caller's areas (a river segment: within the "
        "configured buffer of its line; a lake or forest: inside it), newest first. Chiefs only."
    )
    async def chief_area_cases(
        self, info: Info, first: int = 20, after: str | None = None, area_id: strawberry.ID | None = None
    ) -> AreaCaseConnection:
        check_page_size(first)
        before = decode_cursor(after, ["-id"], [int])[0] if after else None
        rows, has_next = await area_cases.page(
            info.context.require_principal(),
            local_date(clock.now()),
            river_buffer_m(info),
            area_id=decode_id(area_id, "PatrolArea", "areaId") if area_id else None,
            before_id=before,
            limit=first,
        )
        nodes = [AreaCase.of(row) for row in rows]
        cursors = [encode_cursor([n._row.id]) for n in nodes]
        return AreaCaseConnection(
            nodes=nodes,
            page_info=page_info(
                after=after,
                has_next=has_next,
                start=cursors[0] if cursors else None,
                end=cursors[-1] if cursors else None,
            ),
        )

    @strawberry.field(description="One resident case in the caller's areas, read only. Chiefs only.")
    async def chief_area_case(self, info: Info, case_id: strawberry.ID) -> AreaCase:
        row = await area_cases.area_case(
            info.context.require_principal(),
            decode_id(case_id, "Case", "caseId"),
            local_date(clock.now()),
            river_buffer_m(info),
        )
        return AreaCase.of(row)


@strawberry.input
class EscalationCreateInput:
    observation_id: strawberry.ID | None = strawberry.field(
        default=None, description="An observation of one of your patrols. Give this or caseId."
    )
    case_id: strawberry.ID | None = strawberry.field(
        default=None, description="A case you handed off, or a resident's case in your areas."
    )
    to_chief_id: strawberry.ID | None = strawberry.field(
        default=None, description="A chief above you for the area; by default the nearest level above."
    )
    note: str | None = None


@strawberry.input
class EscalationAssignInput:
    escalation_id: strawberry.ID
    department_code: str
    deadline: datetime = strawberry.field(description="When the department must have resolved it.")
    note: str | None = None


@strawberry.type
class EscalationPayload:
    escalation: EscalationNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EscalationMutation:
    @payload_mutation(
        "Report an observation or a case up to a chief above you (上报); asking again returns the first."
    )
    async def escalation_create(self, info: Info, input: EscalationCreateInput) -> EscalationPayload:
        row = await escalation.escalate(
            info.context.require_principal(),
            observation_id=(
                decode_id(input.observation_id, "Observation", "input", "observationId")
                if input.observation_id
                else None
            ),
            case_id=decode_id(input.case_id, "Case", "input", "caseId") if input.case_id else None,
            to_chief_id=(
                decode_id(input.to_chief_id, "User", "input", "toChiefId") if input.to_chief_id else None
            ),
            note=input.note,
            buffer_m=river_buffer_m(info),
        )
        return EscalationPayload(escalation=EscalationNode.from_model(row))

    @payload_mutation(
        "Assign a reported problem to a department with a deadline (交办): the chief it was reported to, "
        "a chief above the sender, or the chief office. Its case goes to the department."
    )
    async def escalation_assign(self, info: Info, input: EscalationAssignInput) -> EscalationPayload:
        assert info.context.services is not None
        row = await escalation.assign(
            info.context.require_principal(),
            await info.context.services.routing.current(),
            decode_id(input.escalation_id, "Escalation", "input", "escalationId"),
            department_code=input.department_code,
            deadline=input.deadline,
            note=input.note,
        )
        return EscalationPayload(escalation=EscalationNode.from_model(row))
