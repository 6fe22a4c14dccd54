"""Per-request DataLoaders: one batch query per relation per request, never one per row.

A `Loaders` is built with each request's context. Loaders are keyed by the batch function itself, so
two resolvers asking for the same rows share one loader and one query, and the types follow the
batch function: `loaders.batch(events_of_cases)` is a `DataLoader[int, list[CaseEvent]]`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from strawberry.dataloader import DataLoader
from tortoise.models import Model

K = TypeVar("K")
V = TypeVar("V")
M = TypeVar("M", bound=Model)

BatchFn = Callable[[list[K]], Awaitable[Sequence[V]]]


@functools.cache
def rows_by_id(model: type[M]) -> BatchFn[int, M | None]:
    """The batch function loading rows of `model` by primary key, None for missing ones.

    Cached per model so that every request's `Loaders.rows(model)` finds the same key.
    """

    async def load(ids: list[int]) -> list[M | None]:
        rows = {row.pk: row for row in await model.filter(pk__in=ids)}
        return [rows.get(i) for i in ids]

    load.__qualname__ = f"rows_by_id({model.__name__})"
    return load


class Loaders:
    """The request's loaders, created on first use."""

    def __init__(self) -> None:
        self._by_batch: dict[Callable[..., Any], DataLoader[Any, Any]] = {}
        self._once: dict[Callable[..., Any], asyncio.Future[Any]] = {}

    def batch(self, load: BatchFn[K, V]) -> DataLoader[K, V]:
        """The loader for a module-level batch function (never a lambda or a partial: those are new
        objects on every call and would defeat the sharing)."""
        loader = self._by_batch.get(load)
        if loader is None:
            loader = self._by_batch[load] = DataLoader(load_fn=load)
        return cast(DataLoader[K, V], loader)

    def rows(self, model: type[M]) -> DataLoader[int, M | None]:
        """Rows of `model` by primary key; no visibility check (the caller asks the access module)."""
        return self.batch(rows_by_id(model))

    async def once(self, compute: Callable[..., Awaitable[V]], *args: Any) -> V:
        """`compute(*args)` the first time this request asks, the same answer afterwards: for what
        every resolver of a request needs, such as the caller's standing."""
        answer = self._once.get(compute)
        if answer is None:
            answer = self._once[compute] = asyncio.ensure_future(compute(*args))
        return cast(V, await answer)
