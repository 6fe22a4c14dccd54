"""Staff reach a consenting reporter through the platform: caseContactReporter."""

from __future__ import annotations

import strawberry

from notifications import relay
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import decode_id


@strawberry.input
class CaseContactReporterInput:
    report_id: strawberry.ID = strawberry.field(description="The report whose reporter to reach.")
    message: str = strawberry.field(description="What to tell them (at most 2000 characters).")


@strawberry.type
class CaseContactReporterPayload:
    sent: bool = strawberry.field(
        default=False, description="The message is in the reporter's in-app inbox. Nothing names them."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ContactMutation:
    @payload_mutation(
        "Send a message to a report's reporter through their in-app inbox, for the staff of its case: "
        "only when the reporter agreed to be contacted (FORBIDDEN otherwise); no account or number is shown."
    )
    async def case_contact_reporter(
        self, info: Info, input: CaseContactReporterInput
    ) -> CaseContactReporterPayload:
        principal = info.context.require_principal()
        report_id = decode_id(input.report_id, "Report", "input", "reportId")
        await relay.contact_reporter(principal, report_id, input.message)
        return CaseContactReporterPayload(sent=True)
