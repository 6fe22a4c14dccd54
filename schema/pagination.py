"""Cursor connections with keyset pagination.

Cursors encode the sort key of the last row seen, not an offset, so a page stays stable while new
rows arrive and a deep page costs what the first one does.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.relay.types import NodeType
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from kernel.errors import invalid
from kernel.limits import MAX_DATE, MAX_ID, MIN_DATE, max_length

MAX_PAGE_SIZE = 100


# Generic over relay's own type variable: strawberry resolves the Edge inside by that variable's name.
@strawberry.type(description="A page of a list, read by cursor; `nodes` when cursors are not needed.")
class Connection(relay.Connection[NodeType]):
    @strawberry.field
    def nodes(self) -> list[NodeType]:
        return [edge.node for edge in self.edges]


def page_info(*, after: str | None, has_next: bool, start: str | None, end: str | None) -> relay.PageInfo:
    """Forward paging: there are earlier rows exactly when the page starts after a cursor."""
    return relay.PageInfo(
        has_next_page=has_next, has_previous_page=after is not None, start_cursor=start, end_cursor=end
    )


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [{"dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, order: Sequence[str], types: Sequence[type] | None = None) -> list[Any]:
    """The sort key a cursor of ours holds; anything else is INVALID on `after`, before it nears a query.

    A cursor comes from the client, so each value must be one the encoder writes: an integer in the
    database's range, a finite number, a short string, null, or an aware moment within the dates we
    accept; and, where `types` are given (one per key), of that key's type."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != len(order):
            raise ValueError("wrong shape")
        decoded = [_cursor_value(v) for v in values]
        if types is not None:
            for value, expected in zip(decoded, types, strict=True):
                if value is not None and not isinstance(value, expected):
                    raise ValueError("wrong type")
    except (ValueError, RecursionError) as exc:
        raise invalid("Not a cursor from this list.", "after") from exc
    return decoded


def _cursor_value(value: Any) -> Any:
    match value:
        case None:
            return None
        case bool():
            raise ValueError("not a key")
        case int() if -MAX_ID - 1 <= value <= MAX_ID:
            return value
        case float() if math.isfinite(value):
            return value
        case str() if len(value) <= max_length("code"):
            return value
        case {"dt": str() as text} if len(value) == 1:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None or not MIN_DATE <= moment.date() <= MAX_DATE:
                raise ValueError("not a moment we store")
            return moment
    raise ValueError("not a key")


def check_page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise invalid(f"`first` must be between 1 and {MAX_PAGE_SIZE}.", "first")
    return first


def _after_condition(order: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after `values` in `order` ("-created_at" = descending)."""
    condition: Q | None = None
    for i, key in enumerate(order):
        name = key.lstrip("-")
        op = "lt" if key.startswith("-") else "gt"
        step = Q(**{f"{name}__{op}": values[i]})
        for prior_key, prior_value in zip(order[:i], values[:i], strict=True):
            step &= Q(**{prior_key.lstrip("-"): prior_value})
        condition = step if condition is None else condition | step
    assert condition is not None
    return condition


async def keyset_page(
    queryset: QuerySet[Any],
    *,
    order: Sequence[str],
    first: int,
    after: str | None,
    to_node: Callable[[Any], NodeType],
) -> Connection[NodeType]:
    """One page of `queryset` in `order`; the last key must be unique (e.g. "-id")."""
    check_page_size(first)
    if after:
        fields = queryset.model._meta.fields_map
        values = decode_cursor(after, order, [fields[key.lstrip("-")].field_type for key in order])
        queryset = queryset.filter(_after_condition(order, values))
    rows = await queryset.order_by(*order).limit(first + 1)
    has_next = len(rows) > first
    rows = rows[:first]
    edges = [
        relay.Edge(cursor=encode_cursor([getattr(row, key.lstrip("-")) for key in order]), node=to_node(row))
        for row in rows
    ]
    return Connection(
        edges=edges,
        page_info=page_info(
            after=after,
            has_next=has_next,
            start=edges[0].cursor if edges else None,
            end=edges[-1].cursor if edges else None,
        ),
    )
