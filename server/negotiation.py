"""Which media type a GraphQL answer is sent as (GraphQL over HTTP, "Accept").

`application/graphql-response+json` when the client prefers it over `application/json`: its status
codes tell a request the server would not run (400) from one that ran (200), so proxies and clients
need not read the body. `application/json` stays the default (no Accept, `*/*`).
"""

from __future__ import annotations

from strawberry.types import ExecutionResult

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _weights(accept: str) -> list[tuple[str, float]]:
    weights = []
    for part in accept.split(","):
        media_type, *params = (item.strip() for item in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0  # a weight that is no number accepts nothing
        weights.append((media_type.lower(), quality))
    return weights


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether to answer with application/graphql-response+json rather than application/json: it is
    named with a higher weight, or the same weight and listed first (as graphql-http's client sends)."""
    if not accept:
        return False
    weights = _weights(accept)

    def best(*names: str) -> tuple[float, int]:
        # (weight, -position): the higher tuple wins; absent is (0, 0)
        found = [(q, -at) for at, (media_type, q) in enumerate(weights) if media_type in names]
        return max(found, default=(0.0, 0))

    ours = best(GRAPHQL_RESPONSE_JSON)
    return ours[0] > 0 and ours > best(JSON, "application/*", "*/*")


def is_request_error(result: ExecutionResult) -> bool:
    """The request never began to run: it does not parse or validate, a variable does not fit its type,
    or it names no registered document. An error while running has a `path` (the field it came from)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)
