"""Output types of webhooks: endpoints and their delivery log, for admins and webhooks:manage keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from delivery.models import Delivery, DeliveryStatus
from identity.service import Principal
from kernel import clock
from schema.context import Info
from schema.delivery.types import DeliveryAttemptType
from schema.errors import UserError
from schema.identity.types import DepartmentNode
from schema.node import ModelNode
from schema.pagination import Connection, keyset_page
from schema.reports.types import CategoryNode
from webhooks import access, endpoints
from webhooks.models import WebhookEndpoint


@strawberry.type(
    name="WebhookDelivery",
    description="One event sent to one endpoint, with its retries. Its `webhookId` is the request's "
    "`webhook-id` header, the same on every retry and replay.",
)
class WebhookDeliveryNode(ModelNode[Delivery]):
    model = Delivery
    id: relay.NodeID[int]
    status: DeliveryStatus
    attempts: int = strawberry.field(description="Attempts since it was created or last replayed.")
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    _row: strawberry.Private[Delivery]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Delivery]) -> Sequence[Delivery]:
        return access.visible(principal, [r for r in rows if r.channel == endpoints.CHANNEL])

    @strawberry.field(description="The `webhook-id` header: msg_<number>.")
    def webhook_id(self) -> str:
        return f"msg_{self._row.id}"

    @strawberry.field(description="The event type, e.g. case.submitted.")
    def event_type(self) -> str:
        return str(self._row.payload.get("type", ""))

    @strawberry.field(description="The JSON body sent (the same bytes on every attempt).")
    def payload(self) -> strawberry.scalars.JSON:
        return self._row.payload

    @strawberry.field(description="Every attempt, oldest first.")
    async def attempt_log(self, info: Info) -> list[DeliveryAttemptType]:
        rows = await info.context.loaders.batch(endpoints.attempts_of).load(self._row.id)
        return [DeliveryAttemptType.of(r) for r in rows]


@strawberry.type(
    name="WebhookEndpoint", description="An integrator's URL that hears of changes. Admins only."
)
class WebhookEndpointNode(ModelNode[WebhookEndpoint]):
    model = WebhookEndpoint
    id: relay.NodeID[int]
    url: str
    description: str
    event_types: list[str] = strawberry.field(description="The event types it hears; empty: every type.")
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[WebhookEndpoint]

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[WebhookEndpoint]
    ) -> Sequence[WebhookEndpoint]:
        return access.visible(principal, rows)

    @strawberry.field(description="Only cases of this department, when set.")
    async def department(self, info: Info) -> DepartmentNode | None:
        if self._row.department_id is None:
            return None
        (found,) = await DepartmentNode.resolve_nodes(info=info, node_ids=[str(self._row.department_id)])
        return found

    @strawberry.field(description="Only cases of this category, when set.")
    async def category(self, info: Info) -> CategoryNode | None:
        if self._row.category_id is None:
            return None
        (found,) = await CategoryNode.resolve_nodes(info=info, node_ids=[str(self._row.category_id)])
        return found

    @strawberry.field(description="Until when the secret replaced by the latest rotation still signs.")
    async def previous_secret_expires_at(self) -> datetime | None:
        return await endpoints.previous_secret_expiry(self._row.id, clock.now())

    @strawberry.field(description="The delivery log, newest first.")
    async def deliveries(
        self, info: Info, first: int = 20, after: str | None = None, status: DeliveryStatus | None = None
    ) -> Connection[WebhookDeliveryNode]:
        access.require_manager(info.context.caller())
        query = endpoints.deliveries_of(self._row.id)
        if status is not None:
            query = query.filter(status=status)
        return await keyset_page(
            query, order=["-id"], first=first, after=after, to_node=WebhookDeliveryNode.from_model
        )


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpointNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookEndpointSecretPayload:
    endpoint: WebhookEndpointNode | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret (whsec_...). Shown only here, once: store it in the receiver.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookEndpointDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDeliveryNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
