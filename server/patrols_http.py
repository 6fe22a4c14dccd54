"""HTTP routes for patrols that are not GraphQL (filled in by its issue)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from schema.context import Services


def patrol_routes(services: Services) -> list[BaseRoute]:
    return []
