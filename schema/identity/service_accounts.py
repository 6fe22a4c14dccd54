"""The admin face of service accounts: API keys for other systems, created, rotated and revoked here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity import service_accounts
from identity.models import ServiceAccount
from identity.service import Principal
from schema.context import Info
from schema.errors import UserError, payload_mutation
from schema.node import ModelNode, decode_id
from schema.pagination import Connection, keyset_page

ID_FIELD = ("input", "id")


@strawberry.type(
    name="ServiceAccount",
    description="An API key of another system. The key itself is shown once, when created or rotated.",
)
class ServiceAccountNode(ModelNode[ServiceAccount]):
    model = ServiceAccount
    id: relay.NodeID[int]
    name: str
    prefix: str = strawberry.field(description="The key's public part: evk_<prefix>_...")
    scopes: list[str]
    requests_per_minute: int
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="To the minute.")

    @classmethod
    async def visible(
        cls, principal: Principal | None, rows: Sequence[ServiceAccount]
    ) -> Sequence[ServiceAccount]:
        return rows if service_accounts.manages_service_accounts(principal) else []


@strawberry.input
class ServiceAccountCreateInput:
    name: str
    scopes: list[str] = strawberry.field(
        description="open311:write, export:read, webhooks:manage, graphql:read (read-only queries)."
    )
    requests_per_minute: int = service_accounts.DEFAULT_RATE


@strawberry.input
class ServiceAccountRotateInput:
    id: strawberry.ID


@strawberry.input
class ServiceAccountRevokeInput:
    id: strawberry.ID


@strawberry.type
class ServiceAccountKeyPayload:
    service_account: ServiceAccountNode | None = None
    key: str | None = strawberry.field(
        default=None, description="The API key (evk_...). Shown only here, once: store it now."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ServiceAccountPayload:
    service_account: ServiceAccountNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _issued(issued: service_accounts.IssuedKey) -> ServiceAccountKeyPayload:
    return ServiceAccountKeyPayload(
        service_account=ServiceAccountNode.from_model(issued.account), key=issued.key
    )


@strawberry.type
class ServiceAccountQuery:
    @strawberry.field(description="Service accounts, newest first. Admins only.")
    async def service_accounts(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[ServiceAccountNode]:
        rows = service_accounts.listed(info.context.require_principal())
        return await keyset_page(
            rows, order=["-id"], first=first, after=after, to_node=ServiceAccountNode.from_model
        )


@strawberry.type
class ServiceAccountMutation:
    @payload_mutation("Create a service account; its API key is in this payload only. Admins only.")
    async def service_account_create(
        self, info: Info, input: ServiceAccountCreateInput
    ) -> ServiceAccountKeyPayload:
        principal = info.context.require_principal()
        issued = await service_accounts.create(
            principal, input.name, list(input.scopes), input.requests_per_minute
        )
        return _issued(issued)

    @payload_mutation(
        "Give a service account a new API key (in this payload only); the old key stops working at once. "
        "Admins only."
    )
    async def service_account_rotate(
        self, info: Info, input: ServiceAccountRotateInput
    ) -> ServiceAccountKeyPayload:
        principal = info.context.require_principal()
        account_id = decode_id(input.id, "ServiceAccount", *ID_FIELD)
        return _issued(await service_accounts.rotate(principal, account_id))

    @payload_mutation("Revoke a service account's key for good. Admins only.")
    async def service_account_revoke(
        self, info: Info, input: ServiceAccountRevokeInput
    ) -> ServiceAccountPayload:
        principal = info.context.require_principal()
        account = await service_accounts.revoke(principal, decode_id(input.id, "ServiceAccount", *ID_FIELD))
        return ServiceAccountPayload(service_account=ServiceAccountNode.from_model(account))
