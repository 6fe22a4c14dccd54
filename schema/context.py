"""What every resolver receives: the request, the caller, per-request loaders and app services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from identity.config import IdentityConfig
from identity.models import Role, User
from identity.service import Principal
from kernel.errors import DomainError, ErrorCode
from kernel.events import EventBus, LocalEventBus
from media.intake import PhotoIntake
from reports.store import RoutingCache
from schema.loaders import Loaders


@dataclass
class Services:
    """App-wide collaborators the server builds once and every request shares."""

    settings: Any  # server.settings.Settings (schema never imports server)
    events: EventBus = field(default_factory=LocalEventBus)
    media: PhotoIntake | None = None  # photo intake and its storage
    routing: RoutingCache = field(default_factory=RoutingCache)  # compiled routing data, per process


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal | None
    identity: IdentityConfig
    services: Services | None = None
    # A service account's key: what it acts as in the operations its scopes allow (webhooks:manage,
    # export:read; the gate in schema.validation); everywhere else the caller is anonymous (`principal`
    # None), which is all graphql:read gives.
    key: Principal | None = None
    connection_params: dict[str, Any] | None = None  # graphql-transport-ws connection_init payload
    loaders: Loaders = field(default_factory=Loaders)  # built anew for every request
    # Problems the input boundary found in a mutation's arguments, by the mutation's response key.
    input_errors: dict[str, list[DomainError]] = field(default_factory=dict)

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in first.")
        return self.principal

    def caller(self) -> Principal | None:
        """The signed-in person, or else the API key: for operations whose access rules know keys."""
        return self.principal or self.key

    def require_user(self) -> User:
        return self.require_principal().user

    def require_role(self, *roles: Role) -> Principal:
        principal = self.require_principal()
        if principal.role not in roles:
            raise DomainError(ErrorCode.FORBIDDEN, "You may not do this.")
        return principal

    def has_role(self, *roles: Role) -> bool:
        return self.principal is not None and self.principal.role in roles


Info = strawberry.Info[Context, None]
