"""Per-request DataLoaders: one batch query per relation per request, never one per row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from schema.context import Info

K = TypeVar("K")
V = TypeVar("V")


def loader(info: Info, name: str, load: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
    """The request's loader called `name`, created on first use."""
    loaders = info.context.loaders
    if name not in loaders:
        loaders[name] = DataLoader(load_fn=load)
    return loaders[name]


def by_id(model: Any) -> Callable[[list[int]], Awaitable[list[Any]]]:
    """A batch function loading rows of `model` by primary key, None for missing ones."""

    async def load(ids: list[int]) -> list[Any]:
        rows = {r.id: r for r in await model.filter(id__in=ids)}
        return [rows.get(i) for i in ids]

    return load
