"""GraphQL for media (filled in by its issue)."""

from __future__ import annotations

import strawberry


@strawberry.type
class MediaQuery:
    pass


@strawberry.type
class MediaMutation:
    pass
