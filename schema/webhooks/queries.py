"""Root query fields of webhooks: the registered endpoints. Admins and API keys with webhooks:manage."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.pagination import Connection, keyset_page
from schema.webhooks.types import WebhookEndpointNode
from webhooks import access
from webhooks.models import WebhookEndpoint


@strawberry.type
class WebhooksQuery:
    @strawberry.field(
        description="Registered webhook endpoints, newest first. Admins and API keys with webhooks:manage."
    )
    async def webhook_endpoints(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[WebhookEndpointNode]:
        access.require_manager(info.context.caller())
        return await keyset_page(
            WebhookEndpoint.all(),
            order=["-id"],
            first=first,
            after=after,
            to_node=WebhookEndpointNode.from_model,
        )
