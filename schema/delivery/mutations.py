"""Mutations of deliveries: replaying a dead letter (admins only)."""

from __future__ import annotations

import strawberry

from delivery import service
from delivery.models import Delivery
from identity.models import Role
from kernel.errors import not_found
from schema.context import Info
from schema.delivery.inputs import DeliveryReplayInput
from schema.delivery.types import DeliveryNode
from schema.errors import UserError, payload_mutation
from schema.node import decode_id


@strawberry.type
class DeliveryReplayPayload:
    delivery: DeliveryNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeliveryMutation:
    @payload_mutation(
        "Send a dead or cancelled delivery again: pending, due now, with its attempt count reset to 0 "
        "(its attempt log is kept). Any other state is a CONFLICT. Admins only."
    )
    async def delivery_replay(self, info: Info, input: DeliveryReplayInput) -> DeliveryReplayPayload:
        info.context.require_role(Role.ADMIN)
        delivery_id = decode_id(input.id, "Delivery", "input", "id")
        row = await info.context.loaders.rows(Delivery).load(delivery_id)
        if row is None:
            raise not_found("delivery", "input", "id")
        replayed = await service.replay(row)
        return DeliveryReplayPayload(delivery=DeliveryNode.from_model(replayed))
