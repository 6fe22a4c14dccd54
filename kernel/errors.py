"""Expected failures of domain operations.

Domain code raises `DomainError`; the GraphQL layer turns it into a typed `userErrors` entry
(mutations) or an error with a stable `extensions.code` (queries), and the plain HTTP routes answer
it with the same body and a matching status. Anything else that escapes is unexpected and gets masked.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ErrorCode(enum.StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    IN_PROGRESS = "IN_PROGRESS"
    UNAVAILABLE = "UNAVAILABLE"
    # The connection died while (or after) the change was committed: it may or may not be saved.
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    # photo intake
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    TOO_LARGE = "TOO_LARGE"
    TOO_MANY_PIXELS = "TOO_MANY_PIXELS"
    CORRUPT = "CORRUPT"
    HASH_MISMATCH = "HASH_MISMATCH"
    OFFSET_MISMATCH = "OFFSET_MISMATCH"


class DomainError(Exception):
    """An expected, explainable refusal: bad input, missing object, wrong state, no permission."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field else None

    @property
    def extensions(self) -> dict[str, str | list[str]]:
        """What a GraphQL error made from this one carries (graphql-core copies it over): the code, and
        the input field at fault where there is one."""
        if self.field:
            return {"code": self.code.value, "field": self.field}
        return {"code": self.code.value}

    def __repr__(self) -> str:
        return f"DomainError({self.code}, {self.message!r}, field={self.field})"


class DomainErrors(DomainError):
    """Several independent input problems found at once (e.g. every invalid field of a form)."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        assert errors, "DomainErrors needs at least one error"
        first = errors[0]
        super().__init__(first.code, first.message, first.field)
        self.errors = list(errors)


def invalid(message: str, *field: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, message, field or None)


def not_found(what: str = "object", *field: str) -> DomainError:
    # The same answer whether the object is missing or merely not the caller's: existence must not leak.
    return DomainError(ErrorCode.NOT_FOUND, f"No such {what}.", field or None)


def forbidden(message: str = "You may not do this.") -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, message)


def conflict(message: str, *field: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message, field or None)
