"""Root query fields of deliveries: the delivery log and its dead letters (admins only)."""

from __future__ import annotations

import strawberry

from delivery import access
from delivery.models import DeliveryStatus
from identity.models import Role
from kernel.errors import invalid
from schema.context import Info
from schema.delivery.types import DeliveryNode
from schema.pagination import Connection, keyset_page


@strawberry.type
class DeliveryQuery:
    @strawberry.field(
        description="Deliveries, newest first; `status: DEAD` lists the dead letters an admin may replay. "
        "Admins only."
    )
    async def deliveries(
        self,
        info: Info,
        status: DeliveryStatus | None = None,
        channel: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[DeliveryNode]:
        info.context.require_role(Role.ADMIN)
        if channel is not None and len(channel) > 32:
            raise invalid("Not a channel name.", "channel")
        return await keyset_page(
            access.deliveries(status, channel),
            order=["-id"],
            first=first,
            after=after,
            to_node=DeliveryNode.from_model,
        )
