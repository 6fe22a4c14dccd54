"""graphql-core's executor with a shortcut for objects whose selected fields are all plain attributes.

graphql-core completes every field on its own: a path, a resolve info, the resolver, an awaitable check
and a walk down the type wrappers, about 5 µs a field. The queue page (50 rows of about 15 fields) spends
most of its CPU there (docs/benchmarks.md, "Queue page"). For an object whose selection has nothing but
strawberry's basic fields (no resolver, no permission or field extension, no arguments, no directive),
the result can only be its attributes, coerced by their types: this executor compiles that selection
once per request into a plan and runs it per object. Anything the plan does not expect (a null in a
non-null field, a value that does not coerce, an awaitable, an exception object) makes it give the object
back to graphql-core, which runs it as always and reports the error where it belongs; plain attributes
have no side effects, so running them twice changes nothing. The answer is the same JSON either way
(tests/api/test_plain_fields.py compares both executors).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import DeferUsage, FieldDetailsList, GroupedFieldSet
from graphql.execution.incremental.incremental_executor import DeliveryGroupMap
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

Complete = Callable[[Any], Any]


class _Unusual(Exception):
    """A value the plan does not handle: graphql-core completes the object instead."""


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One plan (or None: not plain) per selection; the selection object stays referenced with its
        # plan so its id is not reused while this request runs (as graphql-core's own memo does).
        self._plans: dict[int, tuple[GroupedFieldSet, Complete | None]] = {}
        manager = self.middleware_manager
        # A schema extension with a `resolve` hook (tracing) must see every field: no shortcut then.
        self._plain_allowed = manager is None or not manager.middlewares

    def execute_collected_subfields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path,
        grouped_field_set: GroupedFieldSet,
        new_defer_usages: Sequence[DeferUsage],
        delivery_group_map: DeliveryGroupMap | None,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self._plain_allowed and delivery_group_map is None and not new_defer_usages:
            plan = self._object_plan(parent_type, grouped_field_set)
            if plan is not None:
                try:
                    return plan(source_value)
                except Exception:  # the normal path below reports whatever it was
                    pass
        return super().execute_collected_subfields(
            parent_type, source_value, path, grouped_field_set, new_defer_usages, delivery_group_map
        )

    def _object_plan(self, parent_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Complete | None:
        cached = self._plans.get(id(grouped))
        if cached is not None:
            return cached[1]
        fields = []
        for response_name, details in grouped.items():
            field = self._field_plan(parent_type, details)
            if field is None:
                plan = None
                break
            fields.append((response_name, field))
        else:

            def plan(source: Any) -> dict[str, Any]:
                return {name: field(source) for name, field in fields}

        self._plans[id(grouped)] = (grouped, plan)
        return plan

    def _field_plan(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Complete | None:
        node = details[0].node
        if any(d.node.directives or d.node.arguments for d in details):
            return None
        field_def = self.schema.get_field(parent_type, node.name.value)
        # strawberry marks the resolver of a basic field (no resolver, no extension) `_is_default`.
        if field_def is None or not getattr(field_def.resolve, "_is_default", False):
            return None
        definition = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if definition is None or definition.default_resolver is not getattr:
            return None
        complete = self._value_plan(field_def.type, details)
        if complete is None:
            return None
        read = operator.attrgetter(definition.python_name)
        return lambda source: complete(read(source))

    def _value_plan(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        if isinstance(type_, GraphQLNonNull) and is_leaf_type(type_.of_type):
            return _leaf_plan(type_.of_type, non_null=True)
        if isinstance(type_, GraphQLNonNull):
            inner = self._value_plan(type_.of_type, details)
            if inner is None:
                return None

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise _Unusual
                return completed

            return non_null
        if isinstance(type_, GraphQLList):
            item = self._value_plan(type_.of_type, details)
            if item is None:
                return None

            def as_list(value: Any) -> Any:
                if value is None:
                    return None
                if type(value) is not list and type(value) is not tuple:
                    raise _Unusual
                return [item(v) for v in value]

            return as_list
        if is_leaf_type(type_):
            return _leaf_plan(type_, non_null=False)
        # Interfaces and unions pick a runtime type; `is_type_of` checks need graphql-core's info.
        if not is_object_type(type_) or type_.is_type_of is not None:
            return None
        grouped, new_defer_usages, _ = self.collect_subfields(type_, details)
        if new_defer_usages:
            return None
        sub = self._object_plan(type_, grouped)
        if sub is None:
            return None
        is_awaitable = self.is_awaitable

        def obj(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, Exception) or is_awaitable(value):
                raise _Unusual
            return sub(value)

        return obj


# Scalars whose output coercion returns a value of this exact Python type unchanged (graphql-core's
# serialize_string / serialize_id / serialize_boolean): the commonest leaves skip the call.
_UNCHANGED = {id(GraphQLString): str, id(GraphQLID): str, id(GraphQLBoolean): bool}


def _leaf_plan(type_: Any, *, non_null: bool) -> Complete:
    coerce = type_.coerce_output_value
    unchanged = _UNCHANGED.get(id(type_))

    def leaf(value: Any) -> Any:
        if type(value) is unchanged:
            return value
        if value is None:
            if non_null:
                raise _Unusual
            return None
        if isinstance(value, Exception):
            raise _Unusual
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Unusual
        return coerced

    return leaf
