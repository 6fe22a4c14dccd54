"""GraphQL for managers' case statistics; `reports.statistics` defines and computes every figure."""

from __future__ import annotations

from datetime import date

import strawberry

from reports import statistics
from reports.statistics import Dimension
from schema.context import Info
from schema.identity.types import DepartmentNode
from schema.node import decode_id
from schema.reports.types import CategoryNode, _category, _department


@strawberry.input(description="A period of whole days in the city's timezone, [from, to), and a scope.")
class CaseStatisticsInput:
    from_: date = strawberry.field(name="from", description="The first day counted.")
    to: date = strawberry.field(description="The day after the last one counted.")
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="One department only; staff always get their own."
    )
    category_id: strawberry.ID | None = None
    group_by: list[Dimension] = strawberry.field(
        default_factory=lambda: [statistics.Dimension.DEPARTMENT],
        description="Empty: the total row only.",
    )


@strawberry.type(description="The figures of one group, or of all groups (`total`); see the README.")
class CaseStatisticsRow:
    _row: strawberry.Private[statistics.Figures]
    total: bool = strawberry.field(description="The row for everything asked, each case counted once.")
    received: int
    accepted: int
    returned: int
    resolved: int
    closed: int
    reopened: int
    responses: int = strawberry.field(description="Accepts and returns with a due time: the denominator.")
    on_time_acceptance_rate: float | None
    resolutions: int = strawberry.field(description="Resolutions with a due time: the denominator.")
    on_time_resolution_rate: float | None = strawberry.field(description="按期结案率, 0..1.")
    handling_hours_median: float | None
    handling_hours_p90: float | None
    ratings: int
    satisfaction_rate: float | None = strawberry.field(description="Ratings of 4 or 5 among ratings, 0..1.")
    overdue_now: int

    @classmethod
    def from_figures(cls, row: statistics.Figures) -> CaseStatisticsRow:
        return cls(
            _row=row,
            total=row.total,
            received=row.received,
            accepted=row.accepted,
            returned=row.returned,
            resolved=row.resolved,
            closed=row.closed,
            reopened=row.reopened,
            responses=row.responses,
            on_time_acceptance_rate=row.on_time_acceptance_rate,
            resolutions=row.resolutions,
            on_time_resolution_rate=row.on_time_resolution_rate,
            handling_hours_median=row.handling_hours_median,
            handling_hours_p90=row.handling_hours_p90,
            ratings=row.ratings,
            satisfaction_rate=row.satisfaction_rate,
            overdue_now=row.overdue_now,
        )

    @strawberry.field(description="The group's department, or on the total row the one asked about.")
    async def department(self, info: Info) -> DepartmentNode | None:
        return await _department(info, self._row.department_id)

    @strawberry.field(description="The group's category, or on the total row the one asked about.")
    async def category(self, info: Info) -> CategoryNode | None:
        category_id = self._row.category_id
        return None if category_id is None else await _category(info, category_id)


@strawberry.type
class StatisticsQuery:
    @strawberry.field(
        description="Case statistics for a period: staff see their own department, dispatchers and "
        "administrators any. One row per group, then the total row."
    )
    async def case_statistics(self, info: Info, input: CaseStatisticsInput) -> list[CaseStatisticsRow]:
        user = info.context.require_user()
        query = statistics.StatisticsQuery(
            start=input.from_,
            end=input.to,
            department_id=_optional_id(input.department_id, "Department", "departmentId"),
            category_id=_optional_id(input.category_id, "Category", "categoryId"),
            group_by=frozenset(input.group_by),
        )
        rows = await statistics.case_statistics(user, query)
        return [CaseStatisticsRow.from_figures(row) for row in rows]


def _optional_id(value: strawberry.ID | None, type_name: str, name: str) -> int | None:
    return None if value is None else decode_id(value, type_name, "input", name)
