"""Bearer authentication of HTTP requests, as a Starlette authentication backend.

`Authorization: Bearer <access token>`; cookies are never credentials. No header means an anonymous
caller; a bad, expired or revoked token is refused with 401 rather than silently treated as
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

from identity.config import IdentityConfig
from identity.service import Principal, authenticate
from kernel.errors import DomainError, ErrorCode
from server.errors import error_response


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


class BearerTokenBackend(AuthenticationBackend):
    def __init__(self, config: IdentityConfig) -> None:
        self.config = config

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if conn.scope["type"] != "http" or header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Use 'Authorization: Bearer <access token>'.")
        try:
            principal = await authenticate(token.strip(), self.config)
        except DomainError as exc:
            raise AuthenticationError(exc.message) from exc
        return AuthCredentials(["authenticated"]), AuthenticatedUser(principal)


def _refuse(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return error_response(
        DomainError(ErrorCode.UNAUTHENTICATED, str(exc)), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def bearer_authentication(config: IdentityConfig) -> Middleware:
    return Middleware(AuthenticationMiddleware, backend=BearerTokenBackend(config), on_error=_refuse)


def principal_of(conn: HTTPConnection) -> Principal | None:
    """The authenticated caller of a request, or None for an anonymous one."""
    user = conn.user
    return user.principal if isinstance(user, AuthenticatedUser) else None
