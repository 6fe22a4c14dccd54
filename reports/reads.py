"""What the API reads about cases, batched: one query per relation for a whole page of cases, each
answer in the order of the ids asked for. Who may see a row is `reports.access`'s question; these read
what is there."""

from __future__ import annotations

from typing import Any

from tortoise.models import Model
from tortoise.queryset import QuerySet

from reports.models import CaseEvent, CaseFeedback, Category, DeadlineExtension, Jurisdiction, Report


async def _by_case(model: type[Model], case_ids: list[int], order: str = "id") -> list[list[Any]]:
    grouped: dict[int, list[Any]] = {i: [] for i in case_ids}
    rows: list[Any] = await model.filter(case_id__in=case_ids).order_by(order)  # each has a case_id
    for row in rows:
        grouped[row.case_id].append(row)
    return [grouped[i] for i in case_ids]


async def events_of_cases(case_ids: list[int]) -> list[list[CaseEvent]]:
    """Each case's event log, oldest first."""
    return await _by_case(CaseEvent, case_ids)


async def reports_of_cases(case_ids: list[int]) -> list[list[Report]]:
    """Each case's reports, first report first."""
    return await _by_case(Report, case_ids)


async def feedback_of_cases(case_ids: list[int]) -> list[list[CaseFeedback]]:
    """Each case's ratings, first rating first."""
    return await _by_case(CaseFeedback, case_ids)


async def extensions_of_cases(case_ids: list[int]) -> list[list[DeadlineExtension]]:
    """Each case's requests for more time, newest first."""
    return await _by_case(DeadlineExtension, case_ids, "-id")


async def photos_of_cases(case_ids: list[int]) -> list[list[int]]:
    """Each case's photo ids, its first report's first."""
    grouped: dict[int, list[int]] = {i: [] for i in case_ids}
    rows = await Report.filter(case_id__in=case_ids).order_by("id").values_list("case_id", "photo_ids")
    for case_id, photo_ids in rows:
        grouped[case_id].extend(photo_ids)
    return [grouped[i] for i in case_ids]


def categories(*, include_inactive: bool) -> QuerySet[Category]:
    """The catalog in id order: the active categories unless `include_inactive`."""
    query = Category.all() if include_inactive else Category.filter(active=True)
    return query.order_by("id")


def jurisdictions() -> QuerySet[Jurisdiction]:
    return Jurisdiction.all()
