"""Cursor connections with keyset pagination.

Cursors encode the sort key of the last row seen, not an offset, so a page stays stable while new
rows arrive and a deep page costs what the first one does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.relay.types import NodeType
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from kernel.errors import invalid

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


def decode_cursor(cursor: str, order: Sequence[str]) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise invalid("Not a cursor from this list.", "after") from exc
    if not isinstance(values, list) or len(values) != len(order):
        raise invalid("Not a cursor from this list.", "after")
    try:
        return [datetime.fromisoformat(v["dt"]) if isinstance(v, dict) else v for v in values]
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid("Not a cursor from this list.", "after") from exc


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
        values = decode_cursor(after, order)
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
