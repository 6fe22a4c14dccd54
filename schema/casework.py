"""GraphQL for working cases: lifecycle steps, the dispatchers' tools, residents' ratings, and live
updates over graphql-transport-ws. Resolvers translate; `reports.casework`, `reports.dispatch` and
`reports.feedback` decide.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay

from identity.models import Role, User
from kernel.errors import DomainError, forbidden, invalid, not_found
from reports import casework, dispatch, feedback
from reports.lifecycle import Action, TransitionInput
from reports.models import Case, Priority
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import decode_id
from schema.reports.types import CaseNode, _snapshot

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


def _case_id(value: strawberry.ID, *field: str) -> int:
    return decode_id(value, "Case", *field)


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


@strawberry.type
class CasePayload:
    case: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


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


@strawberry.type
class CaseMergePayload:
    case: CaseNode | None = None
    target: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReportSplitInput:
    report_id: strawberry.ID
    note: str | None = None


@strawberry.type
class ReportSplitPayload:
    case: CaseNode | None = strawberry.field(default=None, description="The case the report left.")
    new_case: CaseNode | None = strawberry.field(default=None, description="The report's own new case.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


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


@strawberry.type(description="A change to a case, as live updates deliver it.")
class CaseUpdate:
    kind: str = strawberry.field(description="The step or event: accept, resolve, assigned, escalation...")
    case: CaseNode | None = strawberry.field(
        description="The case as it is now; null when the subscriber may no longer see it (e.g. it left "
        "the department's queue)."
    )
    case_id: strawberry.ID


@strawberry.type
class CaseworkMutation:
    @payload_mutation(
        "Move a case one step: accept, return (reason), start, resolve (note, after-photos where the "
        "category asks), verify or fail verification (dispatchers, with a photo), confirm or dispute "
        "(its reporters), reject (dispatchers, reason). Pass expectedVersion to detect concurrent changes."
    )
    async def case_transition(self, info: Info, input: CaseTransitionInput) -> CasePayload:
        user = info.context.require_user()
        action = Action(input.action.value)
        if action not in DIRECT_ACTIONS:
            raise invalid("Use caseRoute or caseMerge for this step.", "input", "action")
        photos = [decode_id(p, "Photo", "input", "photoIds", str(i)) for i, p in enumerate(input.photo_ids)]
        given = TransitionInput(reason=input.reason, note=input.note, photo_ids=photos)
        step = casework.Step(action, input.expected_version, given)
        case_id = _case_id(input.case_id, "input", "caseId")
        case = await casework.transition(case_id, user, step, events=info.context.events)
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Send a case to a department: from triage, after a return, or elsewhere. Dispatchers.")
    async def case_route(self, info: Info, input: CaseRouteInput) -> CasePayload:
        case = await dispatch.route_case(
            await _snapshot(info),
            info.context.require_user(),
            _case_id(input.case_id, "input", "caseId"),
            input.department_code,
            input.note,
            input.expected_version,
            info.context.events,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Merge a duplicate into another open case; its reporters count once. Dispatchers.")
    async def case_merge(self, info: Info, input: CaseMergeInput) -> CaseMergePayload:
        merged, target = await dispatch.merge_cases(
            info.context.require_user(),
            _case_id(input.case_id, "input", "caseId"),
            _case_id(input.into_case, "input", "intoCase"),
            input.note,
            input.expected_version,
            info.context.events,
        )
        return CaseMergePayload(case=CaseNode.from_model(merged), target=CaseNode.from_model(target))

    @payload_mutation("Take a wrongly grouped report out into a case of its own, routed afresh. Dispatchers.")
    async def report_split(self, info: Info, input: ReportSplitInput) -> ReportSplitPayload:
        source, new_case = await dispatch.split_report(
            await _snapshot(info),
            info.context.require_user(),
            decode_id(input.report_id, "Report", "input", "reportId"),
            input.note,
            info.context.events,
        )
        return ReportSplitPayload(case=CaseNode.from_model(source), new_case=CaseNode.from_model(new_case))

    @payload_mutation("Correct a case's category; re-routes it if another department handles it.")
    async def case_category_change(self, info: Info, input: CaseCategoryChangeInput) -> CasePayload:
        case = await dispatch.change_category(
            await _snapshot(info),
            info.context.require_user(),
            _case_id(input.case_id, "input", "caseId"),
            input.category_code,
            input.note,
            info.context.events,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Set a case's priority. Dispatchers.")
    async def case_priority_set(self, info: Info, input: CasePrioritySetInput) -> CasePayload:
        case = await dispatch.set_priority(
            info.context.require_user(),
            _case_id(input.case_id, "input", "caseId"),
            input.priority,
            input.note,
            info.context.events,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Rate how a resolved case was handled, 1 to 5; rating again replaces your rating.")
    async def case_rate(self, info: Info, input: CaseRateInput) -> CasePayload:
        case_id = _case_id(input.case_id, "input", "caseId")
        await feedback.rate_case(info.context.require_user(), case_id, input.rating, input.comment)
        return CasePayload(case=CaseNode.from_model(await Case.get(id=case_id)))


async def _visible(user: User, case_id: int) -> Case | None:
    try:
        case, _ = await casework.case_for(user, case_id)
    except DomainError:
        return None
    return case


@strawberry.type
class CaseworkSubscription:
    @strawberry.subscription(
        description="Changes to one case, for its reporters and staff. Authenticate in connection_init."
    )
    async def case_updated(self, info: Info, case_id: strawberry.ID) -> AsyncGenerator[CaseUpdate, None]:
        user = info.context.require_user()
        db_id = _case_id(case_id, "caseId")
        if await _visible(user, db_id) is None:
            raise not_found("case", "caseId")
        services = info.context.services
        assert services is not None
        async with services.events.subscribe(casework.case_channel(db_id)) as messages:
            async for message in messages:
                # Checked per event: a department that returned the case stops hearing about it.
                case = await _visible(user, db_id)
                if case is None:
                    return
                yield CaseUpdate(kind=str(message["kind"]), case=CaseNode.from_model(case), case_id=case_id)

    @strawberry.subscription(
        description="Cases entering, changing in or leaving a department's queue (null: the triage queue). "
        "For the department's staff, dispatchers and admins."
    )
    async def department_queue_updated(
        self, info: Info, department_id: strawberry.ID | None = None
    ) -> AsyncGenerator[CaseUpdate, None]:
        user = info.context.require_user()
        department = decode_id(department_id, "Department", "departmentId") if department_id else None
        dispatcher = user.role in (Role.DISPATCHER, Role.ADMIN)
        own = user.role is Role.STAFF and department is not None and user.department_id == department
        if not (dispatcher or own):
            raise forbidden("Only the department's staff and dispatchers follow this queue.")
        services = info.context.services
        assert services is not None
        async with services.events.subscribe(casework.department_channel(department)) as messages:
            async for message in messages:
                case_id = int(message["case"])
                case = await _visible(user, case_id)
                node = CaseNode.from_model(case) if case is not None else None
                yield CaseUpdate(
                    kind=str(message["kind"]),
                    case=node,
                    case_id=strawberry.ID(relay.to_base64("Case", case_id)),
                )
