"""Live updates over graphql-transport-ws: one case, or a department's queue. Who may follow what, and
whether each update still shows the case, is `reports.access`'s answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from identity.models import User
from kernel.errors import DomainError, forbidden, not_found
from reports import access, casework, models
from schema.context import Info
from schema.node import decode_id
from schema.reports.types import CaseNode, CaseUpdate, global_id


async def _visible(user: User, case_id: int) -> models.Case | None:
    """The case as it is now, or None when `user` may not (or no longer) see it."""
    try:
        case, _ = await access.case_for(user, case_id)
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
        db_id = decode_id(case_id, "Case", "caseId")
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
        if not access.may_follow_queue(user, department):
            raise forbidden("Only the department's staff and dispatchers follow this queue.")
        services = info.context.services
        assert services is not None
        async with services.events.subscribe(casework.department_channel(department)) as messages:
            async for message in messages:
                case_id = int(message["case"])
                case = await _visible(user, case_id)
                node = CaseNode.from_model(case) if case is not None else None
                yield CaseUpdate(kind=str(message["kind"]), case=node, case_id=global_id("Case", case_id))
