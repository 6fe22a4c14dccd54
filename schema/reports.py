"""GraphQL for reports (filled in by its issue)."""

from __future__ import annotations

import strawberry


@strawberry.type
class ReportsQuery:
    pass


@strawberry.type
class ReportsMutation:
    pass
