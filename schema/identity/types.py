"""The User and Department types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity import access
from identity.models import Role, User
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
        return access.visible_users(principal, rows)

    @strawberry.field(description="Only the account's owner and admins see it; null for everyone else.")
    def phone(self, info: Info) -> str | None:
        return self._row.phone if access.sees_phone(info.context.principal, self._row.id) else None

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        department_id = self._row.department_id
        if department_id is None:
            return None
        (department,) = await DepartmentNode.resolve_nodes(info=info, node_ids=[str(department_id)])
        return department
