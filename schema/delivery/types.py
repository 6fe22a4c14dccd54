"""The Delivery type: one message to one target through one channel, with its attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from delivery import access
from delivery.models import Delivery, DeliveryAttempt, DeliveryStatus
from identity.service import Principal
from schema.context import Info
from schema.node import ModelNode


@strawberry.type(name="DeliveryAttempt", description="One try at sending a delivery.")
class DeliveryAttemptType:
    at: datetime
    succeeded: bool
    status_code: int | None = strawberry.field(description="The receiver's HTTP status, when it answered.")
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, row: DeliveryAttempt) -> DeliveryAttemptType:
        return cls(
            at=row.at,
            succeeded=row.succeeded,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
        )


@strawberry.type(
    name="Delivery",
    description="A message to a webhook endpoint, a phone or a browser, with its retry state. Admins only.",
)
class DeliveryNode(ModelNode[Delivery]):
    model = Delivery
    id: relay.NodeID[int]
    channel: str = strawberry.field(description="Which channel sends it: webhook, push, sms...")
    target_id: str = strawberry.field(
        description="The channel's own id of the target (an endpoint, a push subscription, a user)."
    )
    status: DeliveryStatus
    attempts: int = strawberry.field(description="Attempts since it was created or last replayed.")
    last_error: str | None
    next_attempt_at: datetime = strawberry.field(description="When it is (or was) due; pending only.")
    created_at: datetime
    finished_at: datetime | None
    ordering_key: str = strawberry.field(
        description="Deliveries to one target with the same non-empty key go out one at a time, in order."
    )

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Delivery]) -> Sequence[Delivery]:
        return access.visible_deliveries(principal, rows)

    @classmethod
    def from_model(cls, row: Delivery) -> DeliveryNode:
        node = super().from_model(row)
        node.target_id = str(row.target_id)
        return node

    @strawberry.field(description="Every attempt, oldest first (kept across replays).")
    async def attempt_log(self, info: Info) -> list[DeliveryAttemptType]:
        rows = await info.context.loaders.batch(access.attempts_of).load(self.id)
        return [DeliveryAttemptType.of(row) for row in rows]
