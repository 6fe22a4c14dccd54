"""Trusted documents over HTTP: a request may name a registered document instead of sending it.

The forms, in a POST's JSON body, a multipart upload's `operations` or a GET's query parameters:
`{"documentId": "sha256:<hex>"}` (GraphQL-over-HTTP persisted documents) and
`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}` (Apollo). The first is
read as the second, so the view has one form to look at.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.types.execution import PreExecutionError

from identity.service import Principal
from server.errors import BadRequest
from trusted import service as trusted
from trusted.service import parse_id

# The hash names no registered document: Apollo's persisted-query link answers it by sending the query.
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
# TRUSTED_DOCUMENTS_ONLY is set and the document sent is not a registered one.
PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"


def carry_document_id(data: dict[str, Any]) -> dict[str, Any]:
    """`documentId` moved into `extensions.persistedQuery`, checked."""
    if "documentId" not in data:
        return data
    document_id = data.pop("documentId")
    sha256 = parse_id(document_id) if isinstance(document_id, str) else None
    if sha256 is None:
        raise BadRequest("`documentId` must be sha256:<64 hex digits>.")
    extensions = data.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise BadRequest("`extensions` must be an object.")
    data["extensions"] = {**extensions, "persistedQuery": {"version": 1, "sha256Hash": sha256}}
    return data


def requested_hash(extensions: object) -> str | None:
    """The lowercase hex hash of the document a request's `extensions` name, if they name one."""
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is None:
        return None
    sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    parsed = parse_id(sha256) if isinstance(sha256, str) else None
    if parsed is None:
        raise BadRequest("`extensions.persistedQuery.sha256Hash` must be 64 hex digits.")
    return parsed


async def document_to_run(query: str | None, sha256: str | None, *, trusted_only: bool) -> str | None:
    """The document a request runs (None: it sent none), or `Refused`. A named document is looked up;
    with TRUSTED_DOCUMENTS_ONLY one sent in full runs only when registered."""
    if query is None:
        if sha256 is None:
            return None
        document = await trusted.document(sha256)
        if document is None:
            raise Refused(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")  # Apollo's link reads it
        return document
    if sha256 is not None or trusted_only:
        sent = trusted.sha256_of(query)
        if sha256 is not None and sha256 != sent:
            raise BadRequest("`extensions.persistedQuery.sha256Hash` is not the sha256 of `query`.")
        if trusted_only and await trusted.document(sent) is None:
            raise Refused(PERSISTED_QUERY_REQUIRED, "Only registered operations run here: send a documentId.")
    return query


class Refused(Exception):
    """A document the server will not run; answered as GraphQL answers one it cannot run."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, extensions={"code": code})

    def result(self) -> PreExecutionError:
        return PreExecutionError(data=None, errors=[self.error])


def cache_control(principal: Principal | None, result: Any, max_age: int) -> str:
    """Shared caches may keep only what anyone may see: an anonymous query's answer without errors."""
    if result.errors:
        return "no-store"
    if principal is not None:
        return "private, no-store"
    return f"public, max-age={max_age}"
