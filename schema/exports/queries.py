"""The caller's own exports, to find one again after the app was closed."""

from __future__ import annotations

import strawberry

from exports import access
from exports.models import ExportStatus
from schema.context import Info
from schema.exports.types import ExportNode
from schema.pagination import Connection, keyset_page


@strawberry.type
class ExportsQuery:
    @strawberry.field(description="The caller's exports, newest first; with `status`, only those in it.")
    async def my_exports(
        self, info: Info, first: int = 20, after: str | None = None, status: ExportStatus | None = None
    ) -> Connection[ExportNode]:
        principal = access.require_reader(info.context.caller())
        return await keyset_page(
            access.own_jobs(principal, status),
            order=["-id"],
            first=first,
            after=after,
            to_node=ExportNode.from_model,
        )
