"""Mutations of reports and the routing data, with their payloads."""

from __future__ import annotations

from typing import Any

import strawberry

from identity.models import Role
from kernel.errors import invalid
from reports import service, store
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.identity.types import DepartmentNode
from schema.node import decode_id
from schema.reports.inputs import (
    CategoryUpdateInput,
    DepartmentUpsertInput,
    JurisdictionImportInput,
    RoutingRuleDeleteInput,
    RoutingRuleUpsertInput,
    SubmitReportInput,
)
from schema.reports.types import (
    CaseNode,
    CategoryNode,
    JurisdictionNode,
    ReportNode,
    RoutingRuleNode,
    _snapshot,
)


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
class ReportsMutation:
    @payload_mutation(
        "Report a nuisance. Idempotent by clientId. Joins an open case of the same category nearby "
        "(or the one named in joinCase) instead of opening a new one."
    )
    async def submit_report(self, info: Info, input: SubmitReportInput) -> SubmitReportPayload:
        principal = info.context.require_principal()
        services = info.context.services
        assert services is not None
        join_case = decode_id(input.join_case, "PublicCase", "input", "joinCase") if input.join_case else None
        photo_ids = [
            decode_id(p, "Photo", "input", "photoIds", str(i)) for i, p in enumerate(input.photo_ids)
        ]
        result = await service.submit_report(
            await _snapshot(info),
            principal.user,
            service.Submission(
                client_id=input.client_id,
                category_code=input.category_code,
                location=input.location.to_domain(),
                description=input.description,
                observed_at=input.observed_at,
                evidence=input.evidence,
                photo_ids=photo_ids,
                anonymous=input.anonymous,
                contact_consent=input.contact_consent,
                join_case_id=join_case,
            ),
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
        changes = {
            "name_zh": input.name_zh,
            "name_en": input.name_en,
            "sla_policy": input.sla_policy,
            "evidence_schema": input.evidence_schema,
            "home_related": input.home_related,
            "after_photos_required": input.after_photos_required,
            "verification_required": input.verification_required,
            "duplicate_radius_m": input.duplicate_radius_m,
            "duplicate_window_hours": input.duplicate_window_hours,
            "notice_zh": input.notice_zh,
            "notice_en": input.notice_en,
            "active": input.active,
        }
        return CategoryPayload(
            category=CategoryNode.from_model(await store.update_category(input.code, changes))
        )

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
        raw: dict[str, Any] = {"id": input.code, "category": input.category, "source": input.source}
        optional = {
            "department_kind": input.department_kind,
            "department": input.department_code,
            "jurisdiction": input.jurisdiction_code,
            "window": input.window,
            "when": input.conditions,
            "priority": input.priority,
        }
        raw.update({k: v for k, v in optional.items() if v is not None})
        if not input.source.strip():
            raise invalid("Cite the regulation the rule follows.", "input", "source")
        rule = store.parse_rule_input(raw, input.scope.value)
        return RoutingRulePayload(rule=RoutingRuleNode.from_model(await store.upsert_rule(rule)))

    @payload_mutation("Delete a routing rule. Admins only.")
    async def routing_rule_delete(
        self, info: Info, input: RoutingRuleDeleteInput
    ) -> RoutingRuleDeletePayload:
        info.context.require_role(Role.ADMIN)
        await store.delete_rule(input.code)
        return RoutingRuleDeletePayload(deleted_code=input.code)
