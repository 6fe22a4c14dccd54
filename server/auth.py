"""Bearer authentication of HTTP requests, as a Starlette authentication backend.

`Authorization: Bearer <access token>`; cookies are never credentials. A service account's API key
(`Bearer evk_...`) with a GraphQL scope is accepted too, within its own request budget: `graphql:read`
runs read-only queries and sees what an anonymous caller sees; `webhooks:manage` and `export:read`
run their domains' operations as the key (`identity.service_accounts.key_principal`). No header means
an anonymous caller; a bad, expired or revoked token is refused with 401 rather than silently treated as
anonymous. WebSockets authenticate in their `connection_init` message instead (`AppGraphQL.on_ws_connect`).
"""

from __future__ import annotations

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response

from identity import service_accounts
from identity.config import IdentityConfig
from identity.models import ServiceAccount
from identity.service import Principal, authenticate
from kernel.errors import DomainError, ErrorCode
from server.errors import error_response
from server.middleware import OverBudget
from server.ratelimit import Budgets


class AuthenticatedUser(BaseUser):
    """`request.user` for a caller with a valid access token."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.user.display_name

    @property
    def identity(self) -> str:
        return str(self.principal.user.id)


class ServiceKeyUser(BaseUser):
    """`request.user` for a caller with a service account's API key."""

    def __init__(self, account: ServiceAccount) -> None:
        self.account = account

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.account.name

    @property
    def identity(self) -> str:
        return f"service:{self.account.prefix}"


class KeyRefused(AuthenticationError):
    """A key refused for a reason with its own status (not 401): a missing scope, a spent budget."""

    def __init__(self, error: DomainError, headers: dict[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers or {}


async def service_key_account(key: str, budgets: Budgets, *scopes: str) -> ServiceAccount:
    """The account of an API key that has one of `scopes` and budget left; a DomainError otherwise
    (UNAUTHENTICATED, FORBIDDEN, or `OverBudget`)."""
    account = await service_accounts.authenticate_key(key)
    service_accounts.require_scope(account, *scopes)
    allowed, retry_after = await budgets.allow(f"key:{account.prefix}", account.requests_per_minute)
    if not allowed:
        raise OverBudget(retry_after)
    return account


class BearerTokenBackend(AuthenticationBackend):
    def __init__(self, config: IdentityConfig, key_budgets: Budgets) -> None:
        self.config = config
        self.key_budgets = key_budgets

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if conn.scope["type"] != "http" or header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Use 'Authorization: Bearer <access token>'.")
        token = token.strip()
        if service_accounts.looks_like_key(token):
            try:
                account = await service_key_account(token, self.key_budgets, *service_accounts.GRAPHQL_SCOPES)
            except DomainError as exc:
                if exc.code is ErrorCode.UNAUTHENTICATED:
                    raise AuthenticationError(exc.message) from exc
                raise KeyRefused(exc, exc.headers if isinstance(exc, OverBudget) else None) from exc
            return AuthCredentials(["service"]), ServiceKeyUser(account)
        try:
            principal = await authenticate(token, self.config)
        except DomainError as exc:
            raise AuthenticationError(exc.message) from exc
        return AuthCredentials(["authenticated"]), AuthenticatedUser(principal)


def _refuse(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    if isinstance(exc, KeyRefused):
        return error_response(exc.error, exc.headers)
    return error_response(
        DomainError(ErrorCode.UNAUTHENTICATED, str(exc)), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def bearer_authentication(config: IdentityConfig, key_budgets: Budgets) -> Middleware:
    backend = BearerTokenBackend(config, key_budgets)
    return Middleware(AuthenticationMiddleware, backend=backend, on_error=_refuse)


def principal_of(conn: HTTPConnection) -> Principal | None:
    """The authenticated caller of a request, or None for an anonymous one."""
    user = conn.user
    return user.principal if isinstance(user, AuthenticatedUser) else None


def key_principal_of(conn: HTTPConnection) -> Principal | None:
    """What a request's API key acts as where its scopes allow (webhooks, exports), if it has one."""
    account = service_account_of(conn)
    return None if account is None else service_accounts.key_principal(account)


def service_account_of(conn: HTTPConnection) -> ServiceAccount | None:
    """The service account whose API key authenticated a request, if any."""
    user = conn.user
    return user.account if isinstance(user, ServiceKeyUser) else None
