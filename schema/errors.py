"""The error conventions of the API.

- Mutations answer expected failures as data: `userErrors { code field message }` on their payload.
- Queries raise; a `DomainError` reaches the client with its message and a stable `extensions.code`.
- Anything unexpected is masked as "Unexpected error." (the log keeps the trace); a lost database
  connection is UNAVAILABLE, or OUTCOME_UNKNOWN in a mutation whose commit had started (or under its
  payload, read after the mutation ran).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension, MaskErrors
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField
from strawberry.types.graphql import OperationType

from kernel.database import (
    OUTCOME_UNKNOWN_MESSAGE,
    UNAVAILABLE_MESSAGE,
    connection_loss_reported,
    is_connection_lost,
)
from kernel.errors import DomainError, DomainErrors, ErrorCode


@strawberry.type(description="A reason a mutation could not do what was asked; nothing was changed.")
class UserError:
    code: ErrorCode
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
        refused = (
            getattr(info.context, "input_errors", {}).get(info.path.key) if info.path.prev is None else None
        )
        if refused:  # the input boundary (schema/validation.py) found these before any resolver ran
            return self.payload_type(user_errors=user_errors(DomainErrors(refused)))
        try:
            async with connection_loss_reported():
                return await next_(source, info, **kwargs)
        except DomainError as exc:
            return self.payload_type(user_errors=user_errors(exc))


def payload_mutation(description: str) -> Any:
    """`@strawberry.mutation` whose expected failures come back as `userErrors`."""
    return strawberry.mutation(description=description, extensions=[UserErrorsExtension()])


# The code of an error GraphQL itself reports about the request: a document that does not parse or
# validate, a variable of the wrong type.
REQUEST_ERROR = "GRAPHQL_VALIDATION_FAILED"
# A document over the depth, token or alias limit.
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# Several operations and no `operationName`, or a name that is not in the document.
OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
# A subscription sent over HTTP.
SUBSCRIPTION_NEEDS_WEBSOCKET = "SUBSCRIPTION_NEEDS_WEBSOCKET"

# graphql-core's hints ("Did you mean 'x'?") name fields, arguments, types and enum values: production
# keeps the schema to itself.
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def is_unexpected(error: GraphQLError) -> bool:
    """A resolver raised something that is neither a `DomainError` nor a GraphQL error: a bug."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | DomainError)


def _code_request_errors(result: object, *, hide_schema: bool) -> None:
    for error in getattr(result, "errors", None) or ():
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": REQUEST_ERROR}
        if hide_schema:
            error.message = _SUGGESTION.sub("", error.message)


class ErrorPolicy(MaskErrors):
    """Masks unexpected errors as INTERNAL; domain errors keep their own code (`DomainError.extensions`)
    and errors the request caused get GRAPHQL_VALIDATION_FAILED."""

    def __init__(self, *, production: bool = False) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")
        self.production = production

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        if error.original_error is not None and is_connection_lost(error.original_error):
            # Not a bug: the database went away under a read. In a mutation that read is its payload's,
            # after a mutation resolver returned (its own loss is a userError): the change may well be
            # saved, so "nothing was saved" would be false.
            if self._in_mutation():
                masked.message = OUTCOME_UNKNOWN_MESSAGE
                masked.extensions = {"code": ErrorCode.OUTCOME_UNKNOWN.value}
            else:
                masked.message = UNAVAILABLE_MESSAGE
                masked.extensions = {"code": ErrorCode.UNAVAILABLE.value}
        else:
            masked.extensions = {"code": "INTERNAL"}
        return masked

    def _in_mutation(self) -> bool:
        try:
            return self.execution_context.operation_type is OperationType.MUTATION
        except RuntimeError:  # no document
            return False

    def on_operation(self) -> Iterator[None]:
        yield from super().on_operation()
        _code_request_errors(self.execution_context.result, hide_schema=self.production)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # A streamed result (over WebSockets) leaves as soon as this hook yields: code it first.
        _code_request_errors(result, hide_schema=self.production)
        yield from super().on_stream_result(result)


# --- what the log says about errors -----------------------------------------------------------------

log = logging.getLogger("schema.errors")


class Schema(strawberry.Schema):
    """strawberry's Schema, logging errors by what they are (strawberry logs each as an ERROR with a
    traceback): a refusal the API meant (a `DomainError`: FORBIDDEN, NOT_FOUND, INVALID ...) or a
    request the server cannot run (a document that does not validate, a bad variable) at INFO without a
    traceback; a lost database connection at WARNING; anything else, a bug, at ERROR with its
    traceback. The request id comes with every line (kernel.logs)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            path = ".".join(str(key) for key in error.path or ()) or "-"
            if isinstance(original, DomainError):
                log.info("refused %s at %s: %s", original.code.value, path, original.message)
            elif original is None or isinstance(original, GraphQLError):
                code = (error.extensions or {}).get("code") or REQUEST_ERROR
                log.info("request error %s at %s: %s", code, path, error.message)
            elif is_connection_lost(original):
                log.warning("database connection lost at %s: %r", path, original)
            else:
                log.error("unexpected error at %s: %s", path, error.message, exc_info=original)
