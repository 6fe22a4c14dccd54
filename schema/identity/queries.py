"""Root query fields: the caller, accounts and departments."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from identity import access, rights
from identity.models import Role
from reports import access as reports_access
from schema.context import Info
from schema.identity.types import DepartmentNode, UserNode
from schema.pagination import Connection, keyset_page


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The signed-in caller, or null.")
    def me(self, info: Info) -> UserNode | None:
        principal = info.context.principal
        return UserNode.from_model(principal.user) if principal else None

    @strawberry.field(
        description="Everything the signed-in resident has here, as one JSON document: account fields, "
        "notification preferences and inbox, their own reports with their cases' timelines, their "
        "photos. Residents only; there is no way to ask for anyone else's."
    )
    async def my_data_export(self, info: Info) -> JSON:
        return cast(JSON, await rights.export_account(info.context.require_user()))

    @strawberry.field(description="Signed-in accounts, newest first. Admins only.")
    async def users(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        role: Role | None = None,
    ) -> Connection[UserNode]:
        users = access.listed_users(info.context.require_principal(), role)
        return await keyset_page(users, order=["-id"], first=first, after=after, to_node=UserNode.from_model)

    @strawberry.field(description="City departments that handle cases.")
    async def departments(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> Connection[DepartmentNode]:
        departments = reports_access.visible_departments(info.context.principal)
        return await keyset_page(
            departments, order=["code"], first=first, after=after, to_node=DepartmentNode.from_model
        )
