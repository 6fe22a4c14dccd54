"""The schema contract with released apps: how the served schema differs from the last released one.

Apps are released on their own schedule and keep sending the documents they were built with, so a
change that breaks a released document (a removed field, argument or enum value, a narrowed type) is
refused by CI; a dangerous one (a new enum value, a changed default) is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    BreakingChange,
    DangerousChange,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)


@dataclass(frozen=True)
class ContractChanges:
    breaking: list[BreakingChange]
    dangerous: list[DangerousChange]

    def lines(self) -> list[str]:
        return [f"breaking: {change.description}" for change in self.breaking] + [
            f"dangerous: {change.description}" for change in self.dangerous
        ]


def compare(released_sdl: str, served_sdl: str) -> ContractChanges:
    """Both sides from SDL, so the check sees exactly what the committed files say."""
    released, served = build_schema(released_sdl), build_schema(served_sdl)
    return ContractChanges(find_breaking_changes(released, served), find_dangerous_changes(released, served))
