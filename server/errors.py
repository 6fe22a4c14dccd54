"""The one error answer of the plain HTTP routes and middleware, shaped like a GraphQL error.

`{"errors": [{"message": ..., "extensions": {"code": ...}}]}`, built from a `DomainError` by
graphql-core's own formatter, with the HTTP status that matches its code.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import GraphQLError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kernel.errors import DomainError, ErrorCode

_STATUS = {
    ErrorCode.INVALID: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.OFFSET_MISMATCH: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.OUTCOME_UNKNOWN: 503,
}


# The code of a request the server cannot read at all: a body that is not JSON, not a JSON object,
# or a broken multipart upload. (A readable request with a bad value gets INVALID or a GraphQL error.)
BAD_REQUEST = "BAD_REQUEST"


class BadRequest(Exception):
    """A request body the server cannot use; answered 400 BAD_REQUEST by `bad_request_handler`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _body(message: str, code: str) -> dict[str, object]:
    return {"errors": [GraphQLError(message, extensions={"code": code}).formatted]}


def error_response(
    error: DomainError, headers: Mapping[str, str] | None = None, status: int | None = None
) -> JSONResponse:
    """The JSON error answer for `error`; a code without a status of its own is a bad request (400)."""
    body = _body(error.message, error.code.value)
    return JSONResponse(body, status_code=status or _STATUS.get(error.code, 400), headers=headers)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's handler for a `DomainError` that a plain HTTP endpoint raises."""
    assert isinstance(exc, DomainError)
    return error_response(exc, {"Cache-Control": "no-store"})  # an error is never worth caching


async def bad_request_handler(request: Request, exc: Exception) -> Response:
    """Starlette's handler for a `BadRequest` (raised by the GraphQL view's body parser)."""
    assert isinstance(exc, BadRequest)
    return JSONResponse(
        _body(exc.message, BAD_REQUEST), status_code=400, headers={"Cache-Control": "no-store"}
    )


# Starlette's own refusals (no such route, method not allowed, an unreadable form) in the same shape.
_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND.value,
    413: ErrorCode.TOO_LARGE.value,
    503: ErrorCode.UNAVAILABLE.value,
}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's handler for its `HTTPException`: a JSON error body instead of plain text."""
    assert isinstance(exc, HTTPException)
    headers = {**(exc.headers or {}), "Cache-Control": "no-store"}
    if exc.status_code in (204, 304):  # statuses that carry no body
        return Response(status_code=exc.status_code, headers=headers)
    code = _HTTP_CODES.get(exc.status_code, BAD_REQUEST)
    return JSONResponse(_body(exc.detail, code), status_code=exc.status_code, headers=headers)
