"""Reads the API pages through that need no caller's standing: public lists and batch readers.

Who may see a patrol, its track and its observations is decided in `patrols.access` before any of
these is asked for a patrol's rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from tortoise.queryset import QuerySet

from kernel import city
from patrols.models import Observation, Patrol, PatrolArea, PatrolStatus, TrackPoint
from patrols.recording import local_date
from patrols.rules import AreaKind


def areas(*, kind: AreaKind | None = None, region: str | None = None) -> QuerySet[PatrolArea]:
    """Patrol areas, of one kind or within a division code (its leading digits) when asked."""
    query = PatrolArea.all()
    if kind is not None:
        query = query.filter(kind=kind)
    if region:
        query = query.filter(admin_region__startswith=region)
    return query


async def observations_of_patrols(patrol_ids: list[int]) -> list[list[Observation]]:
    """Each patrol's observations in the order they were made; one query for all patrols."""
    grouped: dict[int, list[Observation]] = defaultdict(list)
    for row in await Observation.filter(patrol_id__in=patrol_ids).order_by("observed_at", "id"):
        grouped[row.patrol_id].append(row)
    return [grouped[i] for i in patrol_ids]


def track_points(patrol_id: int) -> QuerySet[TrackPoint]:
    """A patrol's stored fixes, flagged ones included."""
    return TrackPoint.filter(patrol_id=patrol_id)


async def days_patrolled(area_id: int, year: int, month: int) -> list[date]:
    """The local dates of a month on which a finished patrol of the area started, in order."""
    first = date(year, month, 1)
    following = (first + timedelta(days=32)).replace(day=1)
    starts = await Patrol.filter(
        area_id=area_id,
        status=PatrolStatus.FINISHED,
        started_at__gte=city.current().start_of(first),
        started_at__lt=city.current().start_of(following),
    ).values_list("started_at")
    return sorted({local_date(t) for (t,) in starts})
