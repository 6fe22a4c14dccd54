"""Trusted documents over HTTP: a request may name a registered document instead of sending it.

The forms, in a POST's JSON body, a multipart upload's `operations` or a GET's query parameters:
`{"documentId": "sha256:<hex>"}` (GraphQL-over-HTTP persisted documents) and
`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}` (Apollo). The first is
read as the second, so the view has one form to look at.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.http import GraphQLRequestData
from strawberry.types.execution import PreExecutionError

from identity.service import Principal
from server.errors import BadRequest
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


def requested_hash(request: GraphQLRequestData) -> str | None:
    """The lowercase hex hash of the document the request names, if it names one."""
    persisted = (request.extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    parsed = parse_id(sha256) if isinstance(sha256, str) else None
    if parsed is None:
        raise BadRequest("`extensions.persistedQuery.sha256Hash` must be 64 hex digits.")
    return parsed


def _refused(code: str, message: str) -> PreExecutionError:
    """A request the server will not run, answered as GraphQL answers a document it cannot run."""
    return PreExecutionError(data=None, errors=[GraphQLError(message, extensions={"code": code})])


def not_found() -> PreExecutionError:
    # Apollo's message, which its persisted-query link looks for (besides the code).
    return _refused(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")


def required() -> PreExecutionError:
    return _refused(PERSISTED_QUERY_REQUIRED, "Only registered operations run here: send a documentId.")


def cache_control(principal: Principal | None, result: Any, max_age: int) -> str:
    """Shared caches may keep only what anyone may see: an anonymous query's answer without errors."""
    if result.errors:
        return "no-store"
    if principal is not None:
        return "private, no-store"
    return f"public, max-age={max_age}"
