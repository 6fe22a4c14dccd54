"""The plain-fields executor gives an object back to graphql-core when a value is not what its type
promises, so the answer (data and errors) is graphql-core's own."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import PlainFieldsExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Leaf:
    name: str
    colour: Colour
    tags: list[str]
    count: int | None


@strawberry.type
class Holder:
    leaf: Leaf | None
    leaves: list[Leaf]


@dataclass
class Row:  # what a resolver hands over: any object with the attributes
    name: Any
    colour: Any
    tags: Any
    count: Any


def holder(*rows: Row) -> Holder:
    return Holder(leaf=rows[0], leaves=list(rows))  # type: ignore[arg-type]


GOOD = Row("a", Colour.RED, ["x", "y"], None)
CASES = {
    "all plain": holder(GOOD, Row("b", Colour.RED, [], 3)),
    "null in a non-null field": holder(GOOD, Row("b", None, [], 1)),
    "a value that does not coerce": holder(Row("a", "purple", [], 1)),
    "not a list": holder(Row("a", Colour.RED, "xy", 1)),
    "null in a non-null list item": holder(Row("a", Colour.RED, ["x", None], 1)),
    "an exception object": holder(Row(ValueError("boom"), Colour.RED, [], 1)),
    "a wrong scalar": holder(Row("a", Colour.RED, [], "many")),
}
DOCUMENT = """query($skip: Boolean!) {
  holder { leaf { name colour tags count } leaves { ...L n: name @skip(if: $skip) } }
}
fragment L on Leaf { colour count tags __typename }"""


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("skip", [False, True])
async def test_same_answer_as_graphql_core(name: str, skip: bool) -> None:
    source = CASES[name]

    @strawberry.type
    class Query:
        @strawberry.field
        def holder(self) -> Holder:
            return source

    def run(executor: type[StrawberryGraphQLCoreExecutionContext]) -> Any:
        schema = strawberry.Schema(query=Query, execution_context_class=executor)
        return schema.execute_sync(DOCUMENT, variable_values={"skip": skip})

    plain, core = run(PlainFieldsExecutionContext), run(StrawberryGraphQLCoreExecutionContext)
    assert json.dumps(plain.data) == json.dumps(core.data)  # the order of keys too
    assert [(e.message, e.path) for e in plain.errors or ()] == [
        (e.message, e.path) for e in core.errors or ()
    ]
    assert (name == "all plain") == (not core.errors)
