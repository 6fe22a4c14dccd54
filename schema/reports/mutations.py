"""Mutations of reports, case work, queues, deadline extensions and the routing data, with their
payloads. Each translates its input and asks the domain, which decides (and checks who may)."""

from __future__ import annotations

import strawberry

from identity.models import Role
from reports import casework, deadlines, dispatch, feedback, models, queue, service, store
from schema.context import Info
from schema.errors import UserError, payload_mutation, user_errors
from schema.identity.types import DepartmentNode
from schema.node import decode_id
from schema.reports.inputs import (
    CaseAssignInput,
    CaseCategoryChangeInput,
    CaseExtensionDecideInput,
    CaseExtensionRequestInput,
    CaseMergeInput,
    CasePrioritySetInput,
    CaseRateInput,
    CaseRouteInput,
    CasesAcceptInput,
    CaseTransitionInput,
    CategoryUpdateInput,
    DepartmentUpsertInput,
    JurisdictionImportInput,
    ReportSplitInput,
    RoutingRuleDeleteInput,
    RoutingRuleUpsertInput,
    SubmitReportInput,
)
from schema.reports.types import (
    CaseNode,
    CategoryNode,
    DeadlineExtensionNode,
    JurisdictionNode,
    ReportNode,
    RoutingRuleNode,
    global_id,
    routing_snapshot,
)


def _case_id(value: strawberry.ID, field: str = "caseId") -> int:
    return decode_id(value, "Case", "input", field)


@strawberry.type
class SubmitReportPayload:
    report: ReportNode | None = None
    case: CaseNode | None = None
    joined_existing_case: bool | None = strawberry.field(
        default=None, description="True when the report joined an open case (a duplicate or 'me too')."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CategoryPayload:
    category: CategoryNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DepartmentPayload:
    department: DepartmentNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class JurisdictionImportPayload:
    jurisdictions: list[JurisdictionNode] | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RoutingRulePayload:
    rule: RoutingRuleNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RoutingRuleDeletePayload:
    deleted_code: str | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CasePayload:
    case: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CaseMergePayload:
    case: CaseNode | None = None
    target: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReportSplitPayload:
    case: CaseNode | None = strawberry.field(default=None, description="The case the report left.")
    new_case: CaseNode | None = strawberry.field(default=None, description="The report's own new case.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CaseExtensionPayload:
    extension: DeadlineExtensionNode | None = None
    case: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="What became of one case of a bulk accept.")
class CaseAcceptResult:
    case_id: strawberry.ID
    case: CaseNode | None = strawberry.field(description="The accepted case; null when refused.")
    user_errors: list[UserError]


@strawberry.type
class CasesAcceptPayload:
    results: list[CaseAcceptResult] = strawberry.field(default_factory=list, description="In input order.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Refusals of the whole request (e.g. too many cases)."
    )


@strawberry.type
class ReportsMutation:
    @payload_mutation(
        "Report a nuisance. Idempotent by clientId. Joins an open case of the same category nearby "
        "(or the one named in joinCase) instead of opening a new one."
    )
    async def submit_report(self, info: Info, input: SubmitReportInput) -> SubmitReportPayload:
        principal = info.context.require_principal()
        services = info.context.services
        assert services is not None
        submission = input.to_domain()
        result = await service.submit_report(
            await routing_snapshot(info),
            principal.user,
            submission,
            per_hour_limit=services.settings.limits.report_submissions_per_hour,
        )
        return SubmitReportPayload(
            report=ReportNode.from_model(result.report),
            case=CaseNode.from_model(result.case),
            joined_existing_case=result.joined_existing_case,
        )

    @payload_mutation("Change a category's names, SLA policy, evidence schema or grouping. Admins only.")
    async def category_update(self, info: Info, input: CategoryUpdateInput) -> CategoryPayload:
        info.context.require_role(Role.ADMIN)
        row = await store.update_category(input.code, input.changes())
        return CategoryPayload(category=CategoryNode.from_model(row))

    @payload_mutation("Create or change a department and its jurisdiction. Admins only.")
    async def department_upsert(self, info: Info, input: DepartmentUpsertInput) -> DepartmentPayload:
        info.context.require_role(Role.ADMIN)
        row = await store.upsert_department(input.code, input.name, input.kind, input.jurisdiction_code)
        return DepartmentPayload(department=DepartmentNode.from_model(row))

    @payload_mutation("Create or replace jurisdictions from a GeoJSON FeatureCollection. Admins only.")
    async def jurisdiction_import(
        self, info: Info, input: JurisdictionImportInput
    ) -> JurisdictionImportPayload:
        info.context.require_role(Role.ADMIN)
        rows = await store.import_jurisdictions(store.parse_feature_collection(input.geojson))
        return JurisdictionImportPayload(jurisdictions=[JurisdictionNode.from_model(r) for r in rows])

    @payload_mutation("Create or change a routing rule; a CITY rule must name its jurisdiction. Admins only.")
    async def routing_rule_upsert(self, info: Info, input: RoutingRuleUpsertInput) -> RoutingRulePayload:
        info.context.require_role(Role.ADMIN)
        rule = store.parse_rule_input(input)
        return RoutingRulePayload(rule=RoutingRuleNode.from_model(await store.upsert_rule(rule)))

    @payload_mutation("Delete a routing rule. Admins only.")
    async def routing_rule_delete(
        self, info: Info, input: RoutingRuleDeleteInput
    ) -> RoutingRuleDeletePayload:
        info.context.require_role(Role.ADMIN)
        await store.delete_rule(input.code)
        return RoutingRuleDeletePayload(deleted_code=input.code)


@strawberry.type
class CaseworkMutation:
    @payload_mutation(
        "Move a case one step: accept, return (reason), start, resolve (note, after-photos where the "
        "category asks), verify or fail verification (dispatchers, with a photo), confirm or dispute "
        "(its reporters), reject (dispatchers, reason). Pass expectedVersion to detect concurrent changes."
    )
    async def case_transition(self, info: Info, input: CaseTransitionInput) -> CasePayload:
        user = info.context.require_user()
        case_id, step = input.to_domain()
        case = await casework.transition(case_id, user, step)
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Send a case to a department: from triage, after a return, or elsewhere. Dispatchers.")
    async def case_route(self, info: Info, input: CaseRouteInput) -> CasePayload:
        case = await dispatch.route_case(
            await routing_snapshot(info),
            info.context.require_user(),
            _case_id(input.case_id),
            input.department_code,
            input.note,
            input.expected_version,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Merge a duplicate into another open case; its reporters count once. Dispatchers.")
    async def case_merge(self, info: Info, input: CaseMergeInput) -> CaseMergePayload:
        merged, target = await dispatch.merge_cases(
            info.context.require_user(),
            _case_id(input.case_id),
            _case_id(input.into_case, "intoCase"),
            input.note,
            input.expected_version,
        )
        return CaseMergePayload(case=CaseNode.from_model(merged), target=CaseNode.from_model(target))

    @payload_mutation("Take a wrongly grouped report out into a case of its own, routed afresh. Dispatchers.")
    async def report_split(self, info: Info, input: ReportSplitInput) -> ReportSplitPayload:
        source, new_case = await dispatch.split_report(
            await routing_snapshot(info),
            info.context.require_user(),
            decode_id(input.report_id, "Report", "input", "reportId"),
            input.note,
        )
        return ReportSplitPayload(case=CaseNode.from_model(source), new_case=CaseNode.from_model(new_case))

    @payload_mutation("Correct a case's category; re-routes it if another department handles it.")
    async def case_category_change(self, info: Info, input: CaseCategoryChangeInput) -> CasePayload:
        case = await dispatch.change_category(
            await routing_snapshot(info),
            info.context.require_user(),
            _case_id(input.case_id),
            input.category_code,
            input.note,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Set a case's priority. Dispatchers.")
    async def case_priority_set(self, info: Info, input: CasePrioritySetInput) -> CasePayload:
        case = await dispatch.set_priority(
            info.context.require_user(),
            _case_id(input.case_id),
            input.priority,
            input.note,
        )
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation("Rate how a resolved case was handled, 1 to 5; rating again replaces your rating.")
    async def case_rate(self, info: Info, input: CaseRateInput) -> CasePayload:
        case_id = _case_id(input.case_id)
        await feedback.rate_case(info.context.require_user(), case_id, input.rating, input.comment)
        # The case as the rating left it; the caller reported it (rate_case checked), so they see it.
        case = await info.context.loaders.rows(models.Case).load(case_id)
        return CasePayload(case=CaseNode.from_model(case) if case else None)


@strawberry.type
class QueueMutation:
    @payload_mutation(
        "Give a case to a staff member of its department (or take it back with a null assignee). "
        "The department's staff or dispatchers. Sending the same assignment again changes nothing."
    )
    async def case_assign(self, info: Info, input: CaseAssignInput) -> CasePayload:
        user = info.context.require_user()
        case_id = _case_id(input.case_id)
        assignee = decode_id(input.assignee_id, "User", "input", "assigneeId") if input.assignee_id else None
        case = await queue.assign_case(user, case_id, assignee)
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation(
        "Accept several routed cases at once; each is its own step (a stale version or a wrong state "
        "refuses that case only). Pass each case's expectedVersion to detect concurrent changes."
    )
    async def cases_accept(self, info: Info, input: CasesAcceptInput) -> CasesAcceptPayload:
        user = info.context.require_user()
        results = await queue.accept_cases(user, input.to_domain())
        return CasesAcceptPayload(
            results=[
                CaseAcceptResult(
                    case_id=global_id("Case", result.case_id),
                    case=CaseNode.from_model(result.case) if result.case else None,
                    user_errors=user_errors(result.error) if result.error else [],
                )
                for result in results
            ]
        )


@strawberry.type
class DeadlinesMutation:
    @payload_mutation(
        "Ask for more time to resolve a case: its department's staff, once accepted, one request at a time. "
        "Sending the same request again returns it."
    )
    async def case_extension_request(
        self, info: Info, input: CaseExtensionRequestInput
    ) -> CaseExtensionPayload:
        extension, case = await deadlines.request_extension(
            info.context.require_user(),
            _case_id(input.case_id),
            input.amount,
            input.reason,
        )
        return CaseExtensionPayload(
            extension=DeadlineExtensionNode.from_model(extension), case=CaseNode.from_model(case)
        )

    @payload_mutation(
        "Approve (the resolution deadline moves) or decline a request for more time. Dispatchers. Deciding "
        "again is CONFLICT unless it repeats the same decision."
    )
    async def case_extension_decide(
        self, info: Info, input: CaseExtensionDecideInput
    ) -> CaseExtensionPayload:
        extension, case = await deadlines.decide_extension(
            info.context.require_user(),
            decode_id(input.extension_id, "DeadlineExtension", "input", "extensionId"),
            input.approve,
            input.note,
        )
        return CaseExtensionPayload(
            extension=DeadlineExtensionNode.from_model(extension), case=CaseNode.from_model(case)
        )
