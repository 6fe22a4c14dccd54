"""The User and Department types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity import access, audit
from identity.models import AccessKind, Role, User
from identity.service import Principal
from reports import access as reports_access
from reports.models import Department
from schema.context import Info
from schema.node import ModelNode


@strawberry.type(name="Department")
class DepartmentNode(ModelNode[Department]):
    model = Department
    id: relay.NodeID[int]
    code: str
    name: str
    kind: str

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Department]) -> Sequence[Department]:
        return reports_access.visible_department_rows(principal, rows)


@strawberry.type(name="User")
class UserNode(ModelNode[User]):
    model = User
    id: relay.NodeID[int]
    role: Role
    username: str | None
    display_name: str
    created_at: datetime
    _row: strawberry.Private[User]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[User]) -> list[User]:
        seen = access.visible_users(principal, rows)
        # Who a resident is (the accounts of reporters): an admin's look at one is in the access log.
        residents = [u.id for u in seen if u.role == Role.CITIZEN and principal and u.id != principal.user.id]
        await audit.note_read(principal, AccessKind.REPORTER_IDENTITY, "user", *residents)
        return seen

    @strawberry.field(description="Only the account's owner and admins see it; null for everyone else.")
    async def phone(self, info: Info) -> str | None:
        principal = info.context.principal
        if not access.sees_phone(principal, self._row.id) or self._row.phone is None:
            return None
        if principal is not None and principal.user.id != self._row.id:
            await audit.note_read(principal, AccessKind.PHONE, "user", self._row.id)
        return self._row.phone

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        department_id = self._row.department_id
        if department_id is None:
            return None
        (department,) = await DepartmentNode.resolve_nodes(info=info, node_ids=[str(department_id)])
        return department
