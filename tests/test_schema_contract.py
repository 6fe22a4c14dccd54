"""schema.graphql is the API contract phone apps build against: it must match what the server serves."""

from __future__ import annotations

from pathlib import Path

from schema import build_schema

CONTRACT = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_matches_the_served_one() -> None:
    served = build_schema(production=False).as_str()
    assert CONTRACT.read_text(encoding="utf-8") == served + "\n", (
        "schema.graphql is out of date: regenerate it with `envcase schema > schema.graphql` and review "
        "the diff (deprecate before removing anything)"
    )
