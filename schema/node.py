"""The one base of every GraphQL type that is a database row: `ModelNode`.

A subclass names its Tortoise `model` and answers `visible` by asking its domain's access module;
`resolve_nodes` (behind `node(id:)` and every reference to the type) batches the request's ids through
the per-request row loader, and `from_model` copies the row's attributes into the type's fields:

    @strawberry.type(name="Category")
    class CategoryNode(ModelNode[models.Category]):
        model = models.Category
        id: relay.NodeID[int]
        code: str

        @classmethod
        async def visible(cls, principal, rows):
            return reports_access.visible_categories(principal, rows)

A field takes the row attribute of its own name; `fields_from_model` renames where they differ, and a
private field called `_row` receives the row itself (for types whose fields are resolvers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, cast, overload

import strawberry
from strawberry import relay
from strawberry.relay.types import GlobalIDValueError
from tortoise.models import Model

from identity.service import Principal
from kernel.errors import DomainError, ErrorCode, invalid
from kernel.limits import parse_id
from schema.context import Info

RowT = TypeVar("RowT", bound=Model)


class ModelNode(relay.Node, Generic[RowT]):
    model: ClassVar[type[Model]]
    # Whether `visible` is asked as the caller's API key (whose access rules know keys); for other
    # types a key looks things up as the anonymous caller it is there.
    key_visible: ClassVar[bool] = False
    fields_from_model: ClassVar[Mapping[str, str]] = {}  # field name -> row attribute, where they differ

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[RowT]) -> Iterable[RowT]:
        """The rows among `rows` that `principal` may see; every node type must say (no default)."""
        raise NotImplementedError(f"{cls.__name__} does not say who may see it")

    @classmethod
    def from_model(cls, row: RowT) -> Self:
        values = {name: row if name == "_row" else getattr(row, source) for name, source in _sources(cls)}
        return cls(**values)

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: Literal[True]
    ) -> list[Self]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: Literal[False] = False
    ) -> list[Self | None]: ...

    @overload
    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool
    ) -> list[Self] | list[Self | None]: ...

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self] | list[Self | None]:
        ids = [parse_id(str(i)) for i in node_ids]  # an id out of range or not canonical is missing
        loaded = await info.context.loaders.rows(cls.model).load_many([i for i in ids if i is not None])
        found_rows = iter(cast(list[RowT | None], loaded))
        rows = [None if i is None else next(found_rows) for i in ids]
        found = [row for row in rows if row is not None]
        viewer = info.context.caller() if cls.key_visible else info.context.principal
        allowed = {row.pk for row in await cls.visible(viewer, found)} if found else set()
        nodes = [cls.from_model(row) if row is not None and row.pk in allowed else None for row in rows]
        if required and None in nodes:  # missing and hidden look the same
            raise DomainError(ErrorCode.NOT_FOUND, f"No such {cls.__name__.removesuffix('Node')}.")
        return nodes


def parse_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, database id) of a global id exactly as we issue it, else None.

    Only the canonical spelling counts: the base64 we write (no other padding, no trailing bytes) of
    `Type:<id>` with the id in `MIN_ID..MAX_ID` written plainly, so one object has one id."""
    try:
        gid = relay.GlobalID.from_id(global_id)
    except GlobalIDValueError:
        return None
    node_id = parse_id(gid.node_id)
    if node_id is None or str(gid) != global_id:
        return None
    return gid.type_name, node_id


def decode_id(global_id: strawberry.ID | str, type_name: str, *field: str) -> int:
    """The database id inside a global ID of the expected type; anything else is INVALID."""
    parsed = parse_global_id(str(global_id))
    if parsed is None or parsed[0] != type_name:
        raise invalid(f"Not the id of a {type_name}.", *field)
    return parsed[1]


_SOURCES: dict[type, list[tuple[str, str]]] = {}


def _sources(cls: type[ModelNode[Any]]) -> list[tuple[str, str]]:
    """(field, row attribute) for every field the type's constructor takes, worked out once per type."""
    sources = _SOURCES.get(cls)
    if sources is None:
        renamed = cls.fields_from_model
        fields = dataclasses.fields(cast(Any, cls))
        sources = _SOURCES[cls] = [(f.name, renamed.get(f.name, f.name)) for f in fields if f.init]
    return sources
