"""The input boundary: every value an operation brings is checked once, before any resolver runs.

`InputBoundary` walks the operation's arguments (inline literals and the variables they use) with
their GraphQL types and refuses, with INVALID and the field's path:

- strings (and ids) longer than their kind allows (`kernel.limits`), holding a lone UTF-16 surrogate
  (no encoding can store it) or a NUL character (PostgreSQL cannot);
- dates and moments outside `MIN_DATE..MAX_DATE` (the calendar's edges overflow on conversion);
- JSON values whose strings break the same rules or whose objects have too many keys.

A mutation's own arguments come back as its payload's `userErrors` (`UserErrorsExtension` reads
them from the context); anything else refuses the whole operation, as a query's bad input does.

`OperationPolicy` refuses what the transport or the document makes ambiguous: a subscription over
HTTP, several operations without `operationName`; and gives the limits' refusals a code.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValueNode,
    VariableNode,
    parse,
    value_from_ast_untyped,
)
from graphql.validation import validate
from starlette.websockets import WebSocket
from strawberry.extensions import ParserCache

from identity.service_accounts import EXPORT_READ, GRAPHQL_READ, WEBHOOKS_MANAGE
from kernel.errors import DomainError, invalid
from kernel.limits import JSON_MAX_KEYS, JSON_MAX_STRING, MAX_DATE, MAX_PROBLEMS, MIN_DATE, max_length
from schema.errors import (
    OPERATION_RESOLUTION_FAILURE,
    QUERY_TOO_COMPLEX,
    REQUEST_ERROR,
    SUBSCRIPTION_NEEDS_WEBSOCKET,
)

Path = tuple[str, ...]


def text_problem(value: str, limit: int) -> str | None:
    """Why a string cannot be taken, or None: too long, a lone surrogate, or a NUL character."""
    if len(value) > limit:
        return f"At most {limit} characters."
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Not valid text (a lone UTF-16 surrogate)."
    if "\x00" in value:
        return "Must not contain NUL characters."
    return None


# Scalars whose values the boundary checks; every other scalar and enum passes untouched.
_CHECKED_SCALARS = frozenset({"String", "ID", "Date", "DateTime", "JSON"})
Bucket = str | None  # a mutation root field's response key, or None for the operation as a whole


def _may_need_check(type_: Any, seen: set[str] | None = None) -> bool:
    """Whether a value of `type_` can hold anything the boundary checks (a string, a date, JSON)."""
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if isinstance(type_, GraphQLScalarType):
        return type_.name in _CHECKED_SCALARS
    if isinstance(type_, GraphQLInputObjectType):
        seen = seen if seen is not None else set()
        if type_.name in seen:
            return False  # already being looked at further up
        seen.add(type_.name)
        return any(_may_need_check(field.type, seen) for field in type_.fields.values())
    return False


class _Plan:
    """What one operation of one document needs checked, worked out once (`_plan_for`): the problems of
    the values written in the document, and the variables to check, in the order the document uses
    them. Only the variables' values differ between requests, so a request replays the plan (`_Walk`).

    Steps: ("problem", bucket, message, path); ("variable", name, type, path, field name, bucket,
    default's steps) for a variable whose type can hold a checked value; ("json", value node, path,
    bucket) for a JSON literal, which may embed variables."""

    def __init__(self, roots: list[str], steps: list[tuple[Any, ...]]) -> None:
        self.roots = roots  # the mutation root fields' response keys, in document order
        self.steps = steps


class _Planner:
    """Walks one operation's arguments with their GraphQL types to build its `_Plan`."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.document = document
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.defaults: dict[str, ValueNode] = {}
        self.used: set[str] = set()  # variables already planned (each is checked where first used)
        self.spread: set[str] = set()  # fragments already walked
        self.count = 0  # static problems (past MAX_PROBLEMS none can be reported)
        self.roots: list[str] = []
        self.steps: list[tuple[Any, ...]] = []

    def plan(self, operation: OperationDefinitionNode) -> _Plan:
        self.defaults = {
            v.variable.name.value: v.default_value
            for v in operation.variable_definitions or ()
            if v.default_value is not None
        }
        root = self.schema.get_root_type(operation.operation)
        if root is not None:
            by_field = operation.operation is OperationType.MUTATION
            for selection in operation.selection_set.selections:
                if isinstance(selection, FieldNode) and by_field:
                    key = (selection.alias or selection.name).value
                    if key not in self.roots:
                        self.roots.append(key)
                    self.field(root, selection, key)
                else:
                    self.selection(root, selection)
        return _Plan(self.roots, self.steps)

    def selection(self, parent: GraphQLNamedType, node: Any) -> None:
        if isinstance(node, FieldNode):
            self.field(parent, node, None)
        elif isinstance(node, InlineFragmentNode):
            condition = (
                self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
            )
            self.selections(condition, node.selection_set)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in self.spread:
            self.spread.add(node.name.value)
            fragment = self.fragments.get(node.name.value)
            if fragment is not None:
                self.selections(
                    self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set
                )

    def selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode | None) -> None:
        if parent is not None and selection_set is not None:
            for node in selection_set.selections:
                self.selection(parent, node)

    def field(self, parent: GraphQLNamedType, node: FieldNode, bucket: Bucket) -> None:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename and introspection
            return
        for argument in node.arguments or ():
            spec = definition.args.get(argument.name.value)
            if spec is not None:
                self.literal(argument.value, spec.type, (argument.name.value,), argument.name.value, bucket)
        named: Any = definition.type
        while isinstance(named, GraphQLNonNull | GraphQLList):
            named = named.of_type
        self.selections(named, node.selection_set)

    def literal(
        self, node: ValueNode, type_: GraphQLInputType, path: Path, name: str, bucket: Bucket
    ) -> None:
        """A value written in the document, which may hold variables."""
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(node, VariableNode):
            var = node.name.value
            if var in self.used:
                return
            self.used.add(var)
            if _may_need_check(type_):
                # A default is a constant literal: what it would report is known now.
                default: list[tuple[Any, ...]] = []
                if var in self.defaults:
                    planner = _Planner(self.schema, self.document)
                    planner.literal(self.defaults[var], type_, path, name, bucket)
                    default = planner.steps
                self.steps.append(("variable", var, type_, path, name, bucket, default))
        elif isinstance(type_, GraphQLList) and isinstance(node, ListValueNode):
            for i, item in enumerate(node.values):
                self.literal(item, type_.of_type, (*path, str(i)), name, bucket)
        elif isinstance(type_, GraphQLInputObjectType) and isinstance(node, ObjectValueNode):
            for entry in node.fields:
                field = type_.fields.get(entry.name.value)
                if field is not None:
                    self.literal(entry.value, field.type, (*path, entry.name.value), entry.name.value, bucket)
        elif isinstance(type_, GraphQLScalarType) and not isinstance(node, ListValueNode | ObjectValueNode):
            if type_.name in _CHECKED_SCALARS:
                checker = _Recorder({}, _Plan([], []))
                checker.value(value_from_ast_untyped(node), type_, path, name, None)
                for message, at in checker.recorded:
                    if self.count < MAX_PROBLEMS:  # past that, no request can report more
                        self.count += 1
                        self.steps.append(("problem", bucket, message, at))
        elif isinstance(type_, GraphQLScalarType):  # a JSON literal: it may embed variables
            self.steps.append(("json", node, path, bucket))


class _Walk:
    """One request's input values, checked by replaying its operation's `_Plan`; problems kept per
    mutation root field."""

    def __init__(self, variables: Mapping[str, Any], plan: _Plan) -> None:
        self.variables = variables
        self.plan = plan
        self.count = 0
        self.by_root: dict[str, list[DomainError]] = {key: [] for key in plan.roots}
        self.operation: list[DomainError] = []  # everything else

    def run(self) -> None:
        self.replay(self.plan.steps)
        self.by_root = {key: errors for key, errors in self.by_root.items() if errors}

    def replay(self, steps: list[tuple[Any, ...]]) -> None:
        for step in steps:
            kind = step[0]
            if kind == "problem":
                _, bucket, message, path = step
                self.problem(bucket, message, path)
            elif kind == "variable":
                _, var, type_, path, name, bucket, default = step
                if var in self.variables:
                    self.value(self.variables[var], type_, path, name, bucket)
                else:
                    self.replay(default)
            else:
                _, node, path, bucket = step
                self.json(value_from_ast_untyped(node, dict(self.variables)), path, bucket)

    def bucket(self, bucket: Bucket) -> list[DomainError]:
        return self.operation if bucket is None else self.by_root[bucket]

    def problem(self, bucket: Bucket, message: str, path: Path) -> None:
        self.count += 1
        if self.count <= MAX_PROBLEMS:
            self.bucket(bucket).append(invalid(message, *path))

    @property
    def full(self) -> bool:
        return self.count >= MAX_PROBLEMS

    def value(self, raw: Any, type_: Any, path: Path, name: str, bucket: Bucket) -> None:
        """A plain value (a variable's, or a literal's) of `type_`; a value of the wrong shape is left
        to GraphQL's own coercion, which refuses it with GRAPHQL_VALIDATION_FAILED."""
        if self.full or raw is None:
            return
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            items = raw if isinstance(raw, list) else [raw]
            for i, item in enumerate(items):
                self.value(item, type_.of_type, (*path, str(i)), name, bucket)
        elif isinstance(type_, GraphQLInputObjectType):
            if isinstance(raw, dict):
                for key, item in raw.items():
                    field = type_.fields.get(key)
                    if field is not None:
                        self.value(item, field.type, (*path, key), key, bucket)
        elif isinstance(type_, GraphQLScalarType):
            self.scalar(raw, type_, path, name, bucket)

    def scalar(self, raw: Any, type_: GraphQLScalarType, path: Path, name: str, bucket: Bucket) -> None:
        if type_.name in ("String", "ID"):
            if isinstance(raw, str) and (reason := text_problem(raw, max_length(name))):
                self.problem(bucket, reason, path)
        elif type_.name in ("Date", "DateTime"):
            try:
                parsed = type_.parse_value(raw)
            except Exception:  # not a date at all: GraphQL's coercion says so
                return
            day = parsed.date() if isinstance(parsed, datetime) else parsed
            if isinstance(day, date) and not MIN_DATE <= day <= MAX_DATE:
                self.problem(bucket, f"Must be between {MIN_DATE} and {MAX_DATE}.", path)
        elif type_.name == "JSON":
            self.json(raw, path, bucket)

    def json(self, raw: Any, path: Path, bucket: Bucket) -> None:
        """Every string (keys too) and object of a JSON value; iterative, as a value may nest deeply."""
        stack: list[tuple[Any, Path]] = [(raw, path)]
        while stack and not self.full:
            value, at = stack.pop()
            if isinstance(value, str):
                if reason := text_problem(value, JSON_MAX_STRING):
                    self.problem(bucket, reason, at)
            elif isinstance(value, dict):
                if len(value) > JSON_MAX_KEYS:
                    self.problem(bucket, f"At most {JSON_MAX_KEYS} keys in one object.", at)
                    continue
                for key, item in value.items():
                    if reason := text_problem(key, max_length("code")):
                        self.problem(bucket, f"A key: {reason}", at)
                    else:
                        stack.append((item, (*at, key)))
            elif isinstance(value, list):  # numbers need no look (a track batch is 700 of them)
                nested = (str, dict, list)
                stack.extend((v, (*at, str(i))) for i, v in enumerate(value) if isinstance(v, nested))


# Plans by (schema, document, operation), as objects: ParserCache hands out the same document object
# for the same text, so a repeated query finds its plan. Entries keep their keys alive, so an id is
# never reused while its entry lives; bounded like the parse cache, as document texts come from clients.
_PLANS: OrderedDict[tuple[int, int, int], tuple[tuple[object, ...], _Plan]] = OrderedDict()
_PLANS_MAX = 256


def _plan_for(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> _Plan:
    key = (id(schema), id(document), id(operation))
    entry = _PLANS.get(key)
    if entry is not None:  # the entry holds these very objects, so their ids are still theirs
        _PLANS.move_to_end(key)
        return entry[1]
    plan = _Planner(schema, document).plan(operation)
    _PLANS[key] = ((schema, document, operation), plan)
    while len(_PLANS) > _PLANS_MAX:
        _PLANS.popitem(last=False)
    return plan


class _Recorder(_Walk):
    """Checks a literal while planning: keeps what it finds as (message, path), for the plan."""

    def __init__(self, variables: Mapping[str, Any], plan: _Plan) -> None:
        super().__init__(variables, plan)
        self.recorded: list[tuple[str, Path]] = []

    def problem(self, bucket: Bucket, message: str, path: Path) -> None:
        self.count += 1
        if self.count <= MAX_PROBLEMS:
            self.recorded.append((message, path))


def _as_graphql_error(error: DomainError) -> GraphQLError:
    return GraphQLError(error.message, extensions=error.extensions)


# The root fields an API key may run beyond graphql:read's queries, by scope. This gate only keeps a
# key to its scopes' operations; whether it may do what it asks is the domain's (webhooks.access).
KEY_FIELDS = {
    WEBHOOKS_MANAGE: frozenset({
        "webhookEndpoints", "webhookEndpointCreate", "webhookEndpointUpdate", "webhookEndpointRotateSecret",
        "webhookEndpointDelete", "webhookDeliveryReplay",
    }),
    EXPORT_READ: frozenset({"exportStart", "exportCancel", "myExports", "node"}),  # node: its own exports
}  # fmt: skip


def _key_refusal(scopes: frozenset[str], operation: OperationDefinitionNode) -> GraphQLError | None:
    """FORBIDDEN for an operation with a root field the key's scopes do not allow."""
    if GRAPHQL_READ in scopes and operation.operation is OperationType.QUERY:
        return None
    allowed = {"__typename"}.union(*(KEY_FIELDS.get(scope, ()) for scope in scopes))
    for selection in operation.selection_set.selections:
        name = selection.name.value if isinstance(selection, FieldNode) else "a fragment"
        if name not in allowed:
            if GRAPHQL_READ in scopes and operation.operation is not OperationType.QUERY:
                message = f"A service account's key runs read-only queries only, not {name}."
            else:
                message = f"This API key's scopes ({', '.join(sorted(scopes))}) do not allow {name}."
            return GraphQLError(message, extensions={"code": "FORBIDDEN"})
    return None


def _selected_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


# Stands in for a document refused while parsing, so the refusal is answered after validation like
# any other (a syntax error raised while parsing ends a WebSocket operation without an `error`).
_REFUSED_DOCUMENT = parse("query Refused { __typename }")


class OperationPolicy(ParserCache):
    """Parses (cached), then, after the document validates: exactly one operation to run, on a
    transport that can run it, and every input value within the boundary (`_Walk`). Refusals are
    pre-execution errors, so HTTP answers them as errors and a WebSocket with an `error` message.

    Runs after `ValidationCache` in the extension list (it reads the validation's result)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: GraphQLError | None = None  # the document could not be parsed

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        try:
            ec.graphql_document = self.cached_parse_document(ec.query, **ec.parse_options)
        except GraphQLSyntaxError as error:
            # The parser stops at the token limit with a syntax error: that one is QUERY_TOO_COMPLEX.
            too_many = error.message.endswith("tokens. Parsing aborted.")
            self.refused = GraphQLError(
                error.message,
                extensions={"code": QUERY_TOO_COMPLEX if too_many else REQUEST_ERROR},
                source=error.source,
                positions=error.positions,
            )
            ec.graphql_document = _REFUSED_DOCUMENT
        else:
            asked: str | None = ec._provided_operation_name
            if asked is not None and _selected_operation(ec.graphql_document, asked) is None:
                self.refused = GraphQLError(
                    f"No operation named {asked!r}.", extensions={"code": OPERATION_RESOLUTION_FAILURE}
                )
                ec.graphql_document = _REFUSED_DOCUMENT
        if self.refused is not None:
            # Strawberry looks the named operation up before validation and answers a plain-text 400
            # (or a bare WebSocket close) when it is missing: the stand-in is run by its own name.
            ec._provided_operation_name = None
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        document = ec.graphql_document
        if self.refused is not None:
            ec.pre_execution_errors = [self.refused]
        elif document is not None:
            if ec.pre_execution_errors is None:  # no validation cache ran before us
                ec.pre_execution_errors = validate(ec.schema._schema, document, ec.validation_rules)
            if not ec.pre_execution_errors:
                refusals = self.refusals(document)
                if refusals:
                    ec.pre_execution_errors = refusals  # a new list: the cached one stays as it was
        yield

    def refusals(self, document: DocumentNode) -> list[GraphQLError]:
        ec = self.execution_context
        # What the client sent: `operation_name` itself falls back to the document's first operation.
        asked: str | None = ec._provided_operation_name
        operation = _selected_operation(document, asked)
        if operation is None:
            # A name not in the document was refused while parsing (`on_parse`).
            message = "Name the operation to run (operationName)."
            return [GraphQLError(message, extensions={"code": OPERATION_RESOLUTION_FAILURE})]
        request = getattr(ec.context, "request", None)
        if operation.operation is OperationType.SUBSCRIPTION and not isinstance(request, WebSocket):
            message = "Subscriptions run over a WebSocket (graphql-transport-ws), not over HTTP."
            return [GraphQLError(message, extensions={"code": SUBSCRIPTION_NEEDS_WEBSOCKET})]
        key = getattr(ec.context, "key", None)
        if key is not None:
            refused = _key_refusal(key.scopes or frozenset(), operation)
            if refused is not None:
                return [refused]
        plan = _plan_for(ec.schema._schema, document, operation)
        if not plan.steps:  # nothing in this operation can be out of bounds (the queue page's case)
            return []
        walk = _Walk(ec.variables or {}, plan)
        walk.run()
        if walk.by_root and hasattr(ec.context, "input_errors"):
            ec.context.input_errors = walk.by_root  # a mutation answers these as its userErrors
        else:
            walk.operation.extend(error for errors in walk.by_root.values() for error in errors)
        return [_as_graphql_error(e) for e in walk.operation]


def too_complex(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """`rule` (a limiter's) with QUERY_TOO_COMPLEX on the errors it reports."""

    class Coded(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(_CodingContext(context))

    Coded.__name__ = f"Coded{rule.__name__}"
    return Coded


class _CodingContext:
    """A validation context whose reported errors carry QUERY_TOO_COMPLEX."""

    def __init__(self, context: ValidationContext) -> None:
        self._context = context

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": QUERY_TOO_COMPLEX}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Callable[..., Any] | Any:
        return getattr(self._context, name)
