"""Mutations of webhooks: register, change, rotate, remove endpoints and replay deliveries. Admins and
API keys with webhooks:manage (webhooks.access)."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.errors import payload_mutation
from schema.node import decode_id
from schema.webhooks.inputs import (
    WebhookDeliveryReplayInput,
    WebhookEndpointCreateInput,
    WebhookEndpointDeleteInput,
    WebhookEndpointRotateSecretInput,
    WebhookEndpointUpdateInput,
)
from schema.webhooks.types import (
    WebhookDeliveryNode,
    WebhookDeliveryPayload,
    WebhookEndpointDeletePayload,
    WebhookEndpointNode,
    WebhookEndpointPayload,
    WebhookEndpointSecretPayload,
)
from webhooks import access, endpoints
from webhooks.addresses import AllowList

ID_FIELD = ("input", "id")


def allow_list(info: Info) -> AllowList:
    services = info.context.services
    return AllowList.parse(services.settings.webhook_allowed_hosts if services else ())


@strawberry.type
class WebhooksMutation:
    @payload_mutation(
        "Register a webhook endpoint. Its signing secret is in this payload only: store it now. "
        "Admins, webhooks:manage keys."
    )
    async def webhook_endpoint_create(
        self, info: Info, input: WebhookEndpointCreateInput
    ) -> WebhookEndpointSecretPayload:
        principal = access.require_manager(info.context.caller())
        row, secret = await endpoints.create_endpoint(principal.user, input.to_domain(), allow_list(info))
        return WebhookEndpointSecretPayload(endpoint=WebhookEndpointNode.from_model(row), secret=secret)

    @payload_mutation("Change a webhook endpoint; enabled: true re-enables it. Admins, webhooks:manage keys.")
    async def webhook_endpoint_update(
        self, info: Info, input: WebhookEndpointUpdateInput
    ) -> WebhookEndpointPayload:
        access.require_manager(info.context.caller())
        endpoint_id = decode_id(input.id, "WebhookEndpoint", *ID_FIELD)
        row = await endpoints.update_endpoint(endpoint_id, input.to_domain(), allow_list(info))
        return WebhookEndpointPayload(endpoint=WebhookEndpointNode.from_model(row))

    @payload_mutation(
        "Give an endpoint a new signing secret (in this payload only); the old one keeps signing beside it "
        "for overlapHours. Admins, webhooks:manage keys."
    )
    async def webhook_endpoint_rotate_secret(
        self, info: Info, input: WebhookEndpointRotateSecretInput
    ) -> WebhookEndpointSecretPayload:
        access.require_manager(info.context.caller())
        endpoint_id = decode_id(input.id, "WebhookEndpoint", *ID_FIELD)
        row, secret = await endpoints.rotate_secret(endpoint_id, input.overlap_hours)
        return WebhookEndpointSecretPayload(endpoint=WebhookEndpointNode.from_model(row), secret=secret)

    @payload_mutation(
        "Remove a webhook endpoint; its pending deliveries are cancelled. Admins, webhooks:manage keys."
    )
    async def webhook_endpoint_delete(
        self, info: Info, input: WebhookEndpointDeleteInput
    ) -> WebhookEndpointDeletePayload:
        access.require_manager(info.context.caller())
        await endpoints.delete_endpoint(decode_id(input.id, "WebhookEndpoint", *ID_FIELD))
        return WebhookEndpointDeletePayload(deleted_id=input.id)

    @payload_mutation(
        "Send a finished webhook delivery again, now, with the same webhook-id (receivers may drop it as a "
        "duplicate). Admins, webhooks:manage keys."
    )
    async def webhook_delivery_replay(
        self, info: Info, input: WebhookDeliveryReplayInput
    ) -> WebhookDeliveryPayload:
        access.require_manager(info.context.caller())
        row = await endpoints.replay_delivery(decode_id(input.id, "WebhookDelivery", *ID_FIELD))
        return WebhookDeliveryPayload(delivery=WebhookDeliveryNode.from_model(row))
