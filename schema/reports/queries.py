"""Root query fields of reports, the public map and the routing data."""

from __future__ import annotations

import strawberry

from identity.models import Role
from kernel.geo import BBox
from reports import models, service
from reports.lifecycle import Status
from schema.context import Info
from schema.pagination import Connection, keyset_page
from schema.reports.inputs import BBoxInput, LocationInput
from schema.reports.types import (
    CategoryNode,
    JurisdictionNode,
    NearbyCase,
    PublicCaseNode,
    ReportNode,
    RoutingRuleNode,
    _snapshot,
)


@strawberry.type
class ReportsQuery:
    @strawberry.field(description="The category catalog (active ones unless `includeInactive`).")
    async def categories(self, info: Info, include_inactive: bool = False) -> list[CategoryNode]:
        query = models.Category.all() if include_inactive else models.Category.filter(active=True)
        return [CategoryNode.from_model(r) for r in await query.order_by("id")]

    @strawberry.field(
        description="The categories some department handles at this point; empty outside "
        "every jurisdiction (a report there still goes to the dispatchers' triage)."
    )
    async def categories_at(self, info: Info, location: LocationInput) -> list[CategoryNode]:
        snapshot = await _snapshot(info)
        point = service.normalize_location(location.to_domain(), "location")
        ids = [snapshot.category_ids[c] for c in snapshot.router.categories_at((point.lon, point.lat))]
        rows = {r.id: r for r in await models.Category.filter(id__in=ids)}
        return [CategoryNode.from_model(rows[i]) for i in ids]

    @strawberry.field(
        description="Up to 5 open public cases of the category near the point, nearest first; "
        "the radius defaults to the category's grouping radius."
    )
    async def nearby_cases(
        self, info: Info, location: LocationInput, category_code: str, radius_m: float | None = None
    ) -> list[NearbyCase]:
        found = await service.nearby_cases(
            await _snapshot(info), category_code, location.to_domain(), radius_m
        )
        return [
            NearbyCase(case=PublicCaseNode.from_model(case), distance_m=round(distance, -1))
            for case, distance in found
        ]

    @strawberry.field(description="The caller's own reports, newest first, each with its case.")
    async def my_reports(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[ReportNode]:
        principal = info.context.require_principal()
        return await keyset_page(
            models.Report.filter(reporter_id=principal.user.id),
            order=["-id"],
            first=first,
            after=after,
            to_node=ReportNode.from_model,
        )

    @strawberry.field(description="Public cases inside a box, newest first: the anonymized map feed.")
    async def public_cases(
        self,
        info: Info,
        bbox: BBoxInput,
        category_codes: list[str] | None = None,
        statuses: list[Status] | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[PublicCaseNode]:
        box = service.check_bbox(
            BBox(bbox.min_latitude, bbox.min_longitude, bbox.max_latitude, bbox.max_longitude)
        )
        category_ids = None
        if category_codes is not None:
            snapshot = await _snapshot(info)
            category_ids = [snapshot.category_ids[c] for c in category_codes if c in snapshot.category_ids]
        return await keyset_page(
            service.public_cases_query(box, category_ids, statuses),
            order=["-id"],
            first=first,
            after=after,
            to_node=PublicCaseNode.from_model,
        )

    @strawberry.field(description="Jurisdictions (code, name, GeoJSON).")
    async def jurisdictions(self, first: int = 50, after: str | None = None) -> Connection[JurisdictionNode]:
        return await keyset_page(
            models.Jurisdiction.all(),
            order=["code"],
            first=first,
            after=after,
            to_node=JurisdictionNode.from_model,
        )

    @strawberry.field(description="The routing table. Admins and dispatchers.")
    async def routing_rules(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> Connection[RoutingRuleNode]:
        info.context.require_role(Role.ADMIN, Role.DISPATCHER)
        return await keyset_page(
            models.RoutingRule.all(),
            order=["code"],
            first=first,
            after=after,
            to_node=RoutingRuleNode.from_model,
        )
