"""The User and Department types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from identity.models import Role
from identity.models import User as UserModel
from reports.models import Department as DepartmentModel
from schema.context import Info


@strawberry.type(name="Department")
class DepartmentNode(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    kind: str

    @classmethod
    def from_model(cls, row: DepartmentModel) -> DepartmentNode:
        return cls(id=row.id, code=row.code, name=row.name, kind=row.kind)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[DepartmentNode | None]:
        ids = [int(i) for i in node_ids]
        rows = {r.id: r for r in await DepartmentModel.filter(id__in=ids)}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


@strawberry.type(name="User")
class UserNode(relay.Node):
    id: relay.NodeID[int]
    role: Role
    username: str | None
    display_name: str
    created_at: datetime
    _phone: strawberry.Private[str | None]
    _department_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: UserModel) -> UserNode:
        return cls(
            id=row.id,
            role=row.role,
            username=row.username,
            display_name=row.display_name,
            created_at=row.created_at,
            _phone=row.phone,
            _department_id=row.department_id,
        )

    @strawberry.field(description="Only the account's owner and admins see it; null for everyone else.")
    def phone(self, info: Info) -> str | None:
        principal = info.context.principal
        if principal and (principal.user.id == self.id or principal.role == Role.ADMIN):
            return self._phone
        return None

    @strawberry.field
    async def department(self, info: Info) -> DepartmentNode | None:
        if self._department_id is None:
            return None
        row = await DepartmentModel.get_or_none(id=self._department_id)
        return DepartmentNode.from_model(row) if row else None

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Any, required: bool = False
    ) -> list[UserNode | None]:
        ids = [int(i) for i in node_ids]
        principal = info.context.principal
        if principal is None:
            return [None] * len(ids)
        query = UserModel.filter(id__in=ids)
        # Staff and dispatchers see colleagues' names; residents and chiefs see only themselves.
        if principal.role not in (Role.ADMIN, Role.DISPATCHER, Role.STAFF):
            query = query.filter(id=principal.user.id)
        elif principal.role != Role.ADMIN:
            query = query.exclude(role=Role.CITIZEN)
        rows = {r.id: r for r in await query}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]
