"""Residents' cases in a chief's areas: a read-only view for the chiefs (河长 / 湖长 / 林长) who answer
for the water or forest the residents complain about.

An area's zone is its polygon (a lake or forest area contains the case's point, boundary included), or
for a river segment the band `buffer_m` either side of its line (200 m by default, configurable as
RIVER_CASE_BUFFER_M), measured in metres in a local plane about the area. The database narrows by the
zone's box; the exact test runs on those few rows. Which cases and which of their fields are shown is
reports' rule (`reports.access.area_view_cases`): residents' cases only, no reporter, description,
photo or exact point. A chief sees the areas of their assignments in force today; a case outside them
answers like a missing one.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from tortoise.expressions import Q

from identity.models import Role
from identity.service import Principal
from kernel.errors import forbidden, invalid, not_found
from kernel.geo import LocalPlane
from patrols.models import ChiefAssignment, PatrolArea
from patrols.rules import AreaKind
from reports.access import area_view_cases
from reports.models import Case

DEFAULT_RIVER_BUFFER_M = 200.0
MAX_RIVER_BUFFER_M = 5000.0
_M_PER_DEGREE = 111_320.0
# Rows the box may hold before the exact test; an area larger than this is read in several steps.
_CHUNK = 5000


class Zone:
    """Where a case counts as inside an area: the polygon, or the band around the line."""

    def __init__(self, area: PatrolArea, buffer_m: float) -> None:
        geometry = shape(area.geometry)
        self.plane = LocalPlane.around(geometry)
        flat = self.plane.project(geometry)
        self.shape: BaseGeometry = flat.buffer(buffer_m) if area.kind is AreaKind.RIVER_SEGMENT else flat
        shapely.prepare(self.shape)
        margin = buffer_m if area.kind is AreaKind.RIVER_SEGMENT else 0.0
        d_lat = margin / _M_PER_DEGREE
        d_lon = margin / (_M_PER_DEGREE * max(math.cos(math.radians(area.max_lat)), 0.01))
        self.box = (area.min_lat - d_lat, area.min_lon - d_lon, area.max_lat + d_lat, area.max_lon + d_lon)

    def covers(self, lats: list[float], lons: list[float]) -> list[bool]:
        if not lats:
            return []
        x, y = self.plane.forward(np.asarray(lons), np.asarray(lats))
        return [bool(v) for v in shapely.covers(self.shape, shapely.points(x, y))]


def check_buffer(buffer_m: float) -> float:
    if not math.isfinite(buffer_m) or not 0 <= buffer_m <= MAX_RIVER_BUFFER_M:
        raise invalid(f"The river buffer must be 0 to {MAX_RIVER_BUFFER_M:g} metres.", "bufferM")
    return buffer_m


async def chief_areas(principal: Principal | None, today: date) -> list[PatrolArea]:
    """The areas of the caller's assignments in force today; only chiefs have an area view."""
    if principal is None or principal.role is not Role.CHIEF:
        raise forbidden("Only chiefs see residents' cases in their areas.")
    ids = await ChiefAssignment.filter(
        Q(valid_to=None) | Q(valid_to__gte=today), chief_id=principal.user.id, valid_from__lte=today
    ).values_list("area_id", flat=True)
    return await PatrolArea.filter(id__in=list(ids)).order_by("id")


async def case_ids_in(area: PatrolArea, buffer_m: float) -> set[int]:
    """The residents' cases inside `area`'s zone."""
    zone = Zone(area, buffer_m)
    found: set[int] = set()
    last = 0
    while True:
        rows = (
            await area_view_cases(*zone.box)
            .filter(id__gt=last)
            .order_by("id")
            .limit(_CHUNK)
            .values_list("id", "latitude", "longitude")
        )
        if not rows:
            return found
        inside = zone.covers([r[1] for r in rows], [r[2] for r in rows])
        found.update(r[0] for r, yes in zip(rows, inside, strict=True) if yes)
        last = rows[-1][0]
        if len(rows) < _CHUNK:
            return found


async def visible_case_ids(
    principal: Principal | None, today: date, buffer_m: float, area_id: int | None = None
) -> set[int]:
    """The residents' cases in the caller's areas (or in one of them, `area_id`)."""
    areas = await chief_areas(principal, today)
    if area_id is not None:
        areas = [a for a in areas if a.id == area_id]
        if not areas:
            raise not_found("patrol area", "areaId")
    found: set[int] = set()
    for area in areas:
        found |= await case_ids_in(area, buffer_m)
    return found


async def page(
    principal: Principal | None,
    today: date,
    buffer_m: float,
    *,
    area_id: int | None,
    before_id: int | None,
    limit: int,
) -> tuple[list[Case], bool]:
    """Up to `limit` of the caller's area cases, newest first, with ids below `before_id`; and
    whether more follow."""
    ids = sorted(await visible_case_ids(principal, today, buffer_m, area_id), reverse=True)
    if before_id is not None:
        ids = [i for i in ids if i < before_id]
    wanted = ids[:limit]
    rows = {c.id: c for c in await Case.filter(id__in=wanted)}
    return [rows[i] for i in wanted if i in rows], len(ids) > limit


async def area_case(principal: Principal | None, case_id: int, today: date, buffer_m: float) -> Case:
    """One resident case in the caller's areas; NOT_FOUND when it is outside them (or missing)."""
    areas = await chief_areas(principal, today)
    case = await area_view_cases(-90.0, -180.0, 90.0, 180.0).filter(id=case_id).first()
    if case is None:
        raise not_found("case", "caseId")
    for area in areas:
        zone = Zone(area, buffer_m)
        if zone.covers([case.latitude], [case.longitude])[0]:
            return case
    raise not_found("case", "caseId")
