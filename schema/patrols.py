"""GraphQL for patrols (filled in by its issue)."""

from __future__ import annotations

import strawberry


@strawberry.type
class PatrolsQuery:
    pass


@strawberry.type
class PatrolsMutation:
    pass
