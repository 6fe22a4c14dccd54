"""The error conventions of the API.

- Mutations answer expected failures as data: `userErrors { code field message }` on their payload.
- Queries raise; a `DomainError` reaches the client with its message and a stable `extensions.code`.
- Anything unexpected is masked as "Unexpected error." (the log keeps the trace).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from asyncpg import exceptions as pg
from graphql import GraphQLError
from strawberry.extensions import FieldExtension, MaskErrors
from strawberry.types.field import StrawberryField
from tortoise.exceptions import DBConnectionError

from kernel.errors import DomainError, DomainErrors, ErrorCode

log = logging.getLogger("schema.errors")

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode", description="Why a mutation was refused.")


@strawberry.type(description="A reason a mutation could not do what was asked; nothing was changed.")
class UserError:
    code: UserErrorCode  # type: ignore[valid-type]
    message: str
    field: list[str] | None = strawberry.field(
        default=None, description="Path to the input field at fault, e.g. ['input', 'location', 'latitude']."
    )


def user_errors(exc: DomainError) -> list[UserError]:
    errors = exc.errors if isinstance(exc, DomainErrors) else [exc]
    return [UserError(code=e.code, message=e.message, field=e.field) for e in errors]


class UserErrorsExtension(FieldExtension):
    """Turns a `DomainError` raised by a mutation resolver into its payload's `userErrors`."""

    def __init__(self) -> None:
        self.payload_type: Any = None

    def apply(self, field: StrawberryField) -> None:
        self.payload_type = field.type

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except DomainError as exc:
            return self.payload_type(user_errors=user_errors(exc))
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            log.warning("database connection lost during a mutation: %r", exc)
            # The transaction died with the connection: nothing was written, so a retry is safe.
            lost = DomainError(
                ErrorCode.UNAVAILABLE, "The database connection was lost; nothing was saved. Try again."
            )
            return self.payload_type(user_errors=user_errors(lost))


def is_connection_lost(exc: BaseException) -> bool:
    """A database connection that died under a request (killed, restarted, network)."""
    lost = (
        DBConnectionError,
        ConnectionError,
        pg.PostgresConnectionError,
        pg.InterfaceError,
        pg.OperatorInterventionError,  # e.g. pg_terminate_backend, a server shutting down
    )
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def payload_mutation(description: str) -> Any:
    """`@strawberry.mutation` whose expected failures come back as `userErrors`."""
    return strawberry.mutation(description=description, extensions=[UserErrorsExtension()])


class ErrorPolicy(MaskErrors):
    """Masks unexpected errors only; gives domain errors and request errors a stable code."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._process(error) for error in errors]

    def _process(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": original.code.value},
            )
        if original is None or isinstance(original, GraphQLError):
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
            return error
        masked = self.anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked
