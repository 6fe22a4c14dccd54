"""The access log (admins read it; nothing changes it) and the reveal of an anonymous reporter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity import audit
from identity.models import AccessKind, AccessRecord, Role
from identity.service import Principal
from kernel.errors import invalid
from reports import anonymity
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import ModelNode, decode_id, parse_global_id
from schema.pagination import Connection, keyset_page

# subject_type in the log -> the GraphQL type of its global id
SUBJECT_TYPES = {"user": "User", "report": "Report", "photo": "Photo", "patrol": "Patrol"}
SUBJECT_OF_TYPE = {name: subject for subject, name in SUBJECT_TYPES.items()}


def _gid(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(type_name, pk))


@strawberry.type(
    name="AccessRecord",
    description="One read of personal data by staff or an admin, or a reveal. Admins only; append-only.",
)
class AccessRecordNode(ModelNode[AccessRecord]):
    model = AccessRecord
    id: relay.NodeID[int]
    role: Role = strawberry.field(description="The reader's role at the time.")
    kind: AccessKind
    subject_type: str = strawberry.field(description="user, report, photo or patrol.")
    purpose: str = strawberry.field(description="Why; always given for a reveal, else usually empty.")
    request_id: str | None = strawberry.field(description="The X-Request-ID of the request that read.")
    at: datetime
    refused: bool = strawberry.field(
        description="The attempt was refused (answered like a missing object): nothing was read."
    )
    _row: strawberry.Private[AccessRecord]

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[AccessRecord]
    ) -> Sequence[AccessRecord]:
        return audit.visible_records(principal, rows)

    @strawberry.field(description="The account that read.")
    def user_id(self) -> strawberry.ID:
        return _gid("User", self._row.user_id)

    @strawberry.field(description="The global id of what was read (a User, Report, Photo or Patrol).")
    def subject_id(self) -> strawberry.ID:
        return _gid(SUBJECT_TYPES.get(self._row.subject_type, self._row.subject_type), self._row.subject_id)


@strawberry.type
class AccessLogQuery:
    @strawberry.field(
        description="The access log, newest first: who read whose personal data, when, why and under which "
        "request. Filter by reader (`userId`), kind, or subject (the global id of a User, Report, Photo or "
        "Patrol), or `refused` (true: only refused attempts; false: only reads). Admins only; no API "
        "changes or deletes it."
    )
    async def access_log(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        user_id: strawberry.ID | None = None,
        kind: AccessKind | None = None,
        subject: strawberry.ID | None = None,
        refused: bool | None = None,
    ) -> Connection[AccessRecordNode]:
        principal = info.context.require_role(Role.ADMIN)
        subject_type = subject_id = None
        if subject is not None:
            parsed = parse_global_id(str(subject))
            if parsed is None or parsed[0] not in SUBJECT_OF_TYPE:
                raise invalid("Not the id of a User, Report, Photo or Patrol.", "subject")
            subject_type, subject_id = SUBJECT_OF_TYPE[parsed[0]], parsed[1]
        return await keyset_page(
            await audit.access_log(
                principal,
                user_id=None if user_id is None else decode_id(user_id, "User", "userId"),
                kind=kind,
                subject_type=subject_type,
                subject_id=subject_id,
                refused=refused,
            ),
            order=["-id"],
            first=first,
            after=after,
            to_node=AccessRecordNode.from_model,
        )


@strawberry.input
class ReporterRevealInput:
    report_id: strawberry.ID
    reason: str | None = strawberry.field(
        default=None, description="Why the identity is needed (required); recorded in the access log."
    )


@strawberry.type(description="Who filed a report, as revealed to an admin.")
class RevealedReporter:
    user_id: strawberry.ID
    display_name: str
    phone: str | None


@strawberry.type
class ReporterRevealPayload:
    reporter: RevealedReporter | None = None
    record: AccessRecordNode | None = strawberry.field(default=None, description="The reveal's log entry.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AccessLogMutation:
    @payload_mutation(
        "Reveal who filed a report (an anonymous one, usually), with the reason: admins only; the reveal "
        "and its reason go to the access log before the identity is returned."
    )
    async def reporter_reveal(self, info: Info, input: ReporterRevealInput) -> ReporterRevealPayload:
        principal = info.context.require_role(Role.ADMIN)
        report_id = decode_id(input.report_id, "Report", "input", "reportId")
        user, record = await anonymity.reveal_reporter(principal, report_id, input.reason or "")
        return ReporterRevealPayload(
            reporter=RevealedReporter(
                user_id=_gid("User", user.id), display_name=user.display_name, phone=user.phone
            ),
            record=AccessRecordNode.from_model(record),
        )
