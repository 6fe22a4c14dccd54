"""Root query fields of patrols: areas, the caller's assignments and patrols, compliance, patrol days."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import strawberry

from kernel import clock
from kernel.errors import forbidden, invalid
from kernel.limits import MAX_DATE, MIN_DATE
from patrols import access, compliance, reads, signboard
from patrols.access import Viewer
from patrols.catalog import observation_categories
from patrols.recording import local_date
from patrols.rules import AreaKind
from schema.context import Info
from schema.node import decode_id
from schema.pagination import Connection, keyset_page
from schema.patrols.types import (
    ChiefAssignmentNode,
    ComplianceVerdict,
    ObservationCategoryType,
    PatrolAreaNode,
    PatrolDelegation,
    PatrolNode,
    Signboard,
    VolunteerEnrollmentNode,
)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


async def viewer(info: Info) -> Viewer:
    """The caller's standing, loaded once per request."""
    return await info.context.loaders.once(access.viewer_of, info.context.principal)


@strawberry.type
class PatrolsQuery:
    @strawberry.field(description="Patrol areas, by code. Public.")
    async def patrol_areas(
        self,
        first: int = 50,
        after: str | None = None,
        kind: AreaKind | None = None,
        region: str | None = None,
    ) -> Connection[PatrolAreaNode]:
        return await keyset_page(
            reads.areas(kind=kind, region=region),
            order=["code"],
            first=first,
            after=after,
            to_node=PatrolAreaNode.from_model,
        )

    @strawberry.field(
        description="The public signboard (公示牌) of a patrol area by code, as of today; null for an "
        "unknown code. No sign-in; also GET /patrol-areas/{code}/signboard.json."
    )
    async def signboard(self, area_code: str) -> Signboard | None:
        board = await signboard.signboard(area_code)
        return None if board is None else Signboard.of(board)

    @strawberry.field(description="What a chief may record on patrol.")
    def observation_categories(self) -> list[ObservationCategoryType]:
        return [ObservationCategoryType.of(c) for c in observation_categories().values()]

    @strawberry.field(description="The caller's assignments, current and past, newest first.")
    async def my_assignments(self, info: Info) -> list[ChiefAssignmentNode]:
        rows = await access.own_assignments(info.context.require_principal())
        return [ChiefAssignmentNode.from_model(r) for r in rows]

    @strawberry.field(
        description="Delegations the caller gave or received (overseers: all), newest first; "
        "`current`: only those in force today or later."
    )
    async def patrol_delegations(
        self, info: Info, current: bool = False, first: int = 50
    ) -> list[PatrolDelegation]:
        if not 1 <= first <= 100:
            raise invalid("first must be between 1 and 100.", "first")
        info.context.require_principal()
        query = access.visible_delegations(await viewer(info))
        if current:
            query = query.filter(valid_to__gte=local_date(clock.now()))
        rows = await query.order_by("-valid_from", "-id").limit(first)
        return [PatrolDelegation.from_model(r) for r in rows]

    @strawberry.field(description="Patrols the caller recorded or that count for them, newest first.")
    async def my_patrols(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[PatrolNode]:
        return await keyset_page(
            access.own_patrols(info.context.require_principal()),
            order=["-started_at", "-id"],
            first=first,
            after=after,
            to_node=PatrolNode.from_model,
        )

    @strawberry.field(
        description="Required, done and missing patrols per chief and rule over the local dates from..to, "
        "with the reason each patrol counted or not. Give one of chiefId, areaId, region. Callers see "
        "themselves and the chiefs they supervise; admins and the river-chief office see all."
    )
    async def patrol_compliance(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        chief_id: strawberry.ID | None = None,
        area_id: strawberry.ID | None = None,
        region: str | None = None,
    ) -> list[ComplianceVerdict]:
        access.refuse_volunteer(info.context.require_principal(), "read the chiefs' compliance")
        if sum(x is not None for x in (chief_id, area_id, region)) != 1:
            raise invalid("Give exactly one of chiefId, areaId or region.", "chiefId")
        verdicts = await compliance.compliance(
            await viewer(info),
            from_,
            to,
            chief_id=decode_id(chief_id, "User", "chiefId") if chief_id else None,
            area_id=decode_id(area_id, "PatrolArea", "areaId") if area_id else None,
            region=region,
        )
        return [ComplianceVerdict.of(v) for v in verdicts]

    @strawberry.field(description="The caller's enrollments as a social supervisor, newest first.")
    async def my_volunteer_enrollments(self, info: Info) -> list[VolunteerEnrollmentNode]:
        rows = await access.own_enrollments(info.context.require_principal())
        return [VolunteerEnrollmentNode.from_model(r) for r in rows]

    @strawberry.field(
        description="Patrols recorded by social supervisors (民间河长), newest first, apart from the chiefs' "
        "own: overseers (admins, the chief offices) see all, a volunteer their own."
    )
    async def volunteer_patrols(
        self, info: Info, first: int = 20, after: str | None = None, area_id: strawberry.ID | None = None
    ) -> Connection[PatrolNode]:
        principal = info.context.require_principal()
        if not await access.may_list_volunteer_patrols(principal):
            raise forbidden("Only the chief office, admins and the volunteers themselves list these patrols.")
        query = access.volunteer_patrols(principal)
        if area_id is not None:
            query = query.filter(area_id=decode_id(area_id, "PatrolArea", "areaId"))
        return await keyset_page(
            query, order=["-started_at", "-id"], first=first, after=after, to_node=PatrolNode.from_model
        )

    @strawberry.field(
        description="Local dates of a month (YYYY-MM) the area was patrolled on. Public: no names, no tracks."
    )
    async def area_patrol_days(self, area_id: strawberry.ID, month: str) -> list[date]:
        match = _MONTH.match(month)
        if not match or not 1 <= int(match[2]) <= 12 or not MIN_DATE.year <= int(match[1]) <= MAX_DATE.year:
            raise invalid("month must look like 2026-05.", "month")
        return await reads.days_patrolled(
            decode_id(area_id, "PatrolArea", "areaId"), int(match[1]), int(match[2])
        )
