"""GraphQL for deadline extensions (延期): a department asks, a dispatcher decides. `reports.deadlines`
decides; the deadline state and the requests themselves are fields of Case (schema.reports)."""

from __future__ import annotations

import strawberry

from reports import deadlines
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import decode_id
from schema.reports.types import CaseNode, DeadlineExtensionNode


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


@strawberry.type
class CaseExtensionPayload:
    extension: DeadlineExtensionNode | None = None
    case: CaseNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


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
            decode_id(input.case_id, "Case", "input", "caseId"),
            input.amount,
            input.reason,
            events=info.context.events,
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
            events=info.context.events,
        )
        return CaseExtensionPayload(
            extension=DeadlineExtensionNode.from_model(extension), case=CaseNode.from_model(case)
        )
