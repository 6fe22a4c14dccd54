"""Root query fields of reports: the catalog, the public map, a resident's own reports, department
queues, statistics and the routing data."""

from __future__ import annotations

import strawberry

from kernel.errors import invalid
from reports import access, queue, reads, service, statistics, transparency
from reports.lifecycle import Status
from reports.queue import QueueFilter, QueueOrder
from schema.context import Info
from schema.node import decode_id
from schema.pagination import MAX_PAGE_SIZE, Connection, decode_cursor, encode_cursor, keyset_page, page_info
from schema.reports.inputs import BBoxInput, CaseQueueFilter, CaseStatisticsInput, LocationInput
from schema.reports.queue_types import CaseQueueConnection, CaseQueueEdge, CaseQueueItem
from schema.reports.types import (
    CaseStatisticsRow,
    CategoryNode,
    DepartmentMonthFigures,
    JurisdictionNode,
    NearbyCase,
    PublicCaseNode,
    ReportNode,
    RoutingRuleNode,
    routing_snapshot,
)

# The cursor's key names per queue order (their count checks a cursor's shape).
CURSOR_KEYS = {
    QueueOrder.CREATED: ("id",),
    QueueOrder.PRIORITY: ("priority", "id"),
    QueueOrder.DUE: ("noDue", "due", "id"),
}


@strawberry.type
class ReportsQuery:
    @strawberry.field(description="The category catalog (active ones unless `includeInactive`).")
    async def categories(self, info: Info, include_inactive: bool = False) -> list[CategoryNode]:
        rows = await reads.categories(include_inactive=include_inactive)
        return [CategoryNode.from_model(r) for r in access.visible_categories(info.context.principal, rows)]

    @strawberry.field(
        description="The categories some department handles at this point; empty outside "
        "every jurisdiction (a report there still goes to the dispatchers' triage)."
    )
    async def categories_at(self, info: Info, location: LocationInput) -> list[CategoryNode]:
        snapshot = await routing_snapshot(info)
        point = service.normalize_location(location.to_domain(), "location")
        ids = [snapshot.category_ids[c] for c in snapshot.router.categories_at((point.lon, point.lat))]
        nodes = await CategoryNode.resolve_nodes(info=info, node_ids=[str(i) for i in ids])
        return [node for node in nodes if node is not None]

    @strawberry.field(
        description="Up to 5 open public cases of the category near the point, nearest first; "
        "the radius defaults to the category's grouping radius."
    )
    async def nearby_cases(
        self, info: Info, location: LocationInput, category_code: str, radius_m: float | None = None
    ) -> list[NearbyCase]:
        found = await service.nearby_cases(
            await routing_snapshot(info), category_code, location.to_domain(), radius_m
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
            access.own_reports(principal),
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
        box = service.check_bbox(bbox.to_domain())
        category_ids = None
        if category_codes is not None:
            snapshot = await routing_snapshot(info)
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
            reads.jurisdictions(),
            order=["code"],
            first=first,
            after=after,
            to_node=JurisdictionNode.from_model,
        )

    @strawberry.field(description="The routing table. Admins and dispatchers.")
    async def routing_rules(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> Connection[RoutingRuleNode]:
        return await keyset_page(
            access.routing_rules(info.context.require_principal()),
            order=["code"],
            first=first,
            after=after,
            to_node=RoutingRuleNode.from_model,
        )


def _max_page_size(info: Info) -> int:
    services = info.context.services
    return services.settings.limits.max_page_size if services else MAX_PAGE_SIZE


@strawberry.type
class QueueQuery:
    @strawberry.field(
        description="A department's queue (staff: their own; dispatchers and admins: any, or the triage "
        "queue when departmentId is null), filtered, sorted and paged by cursor."
    )
    async def department_queue(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        filter: CaseQueueFilter | None = None,
        order_by: QueueOrder = QueueOrder.DUE,
        first: int = 50,
        after: str | None = None,
    ) -> CaseQueueConnection:
        user = info.context.require_user()
        limit = _max_page_size(info)
        if not 1 <= first <= limit:
            raise invalid(f"`first` must be between 1 and {limit}.", "first")
        order = QueueOrder(order_by.value)
        department = decode_id(department_id, "Department", "departmentId") if department_id else None
        scope = await queue.queue_scope(user, department)
        given = filter.to_domain() if filter else QueueFilter()
        key = decode_cursor(after, CURSOR_KEYS[order]) if after else None
        page = await queue.queue_page(scope, given, order, first, key)
        media_base = f"{info.context.request.base_url}media/"
        edges = [
            CaseQueueEdge(node=CaseQueueItem.from_row(row, media_base), _key=row.key) for row in page.rows
        ]
        statuses = given.statuses if given.statuses is not None else queue.default_statuses(scope)
        rows = page.rows
        return CaseQueueConnection(
            edges=edges,
            page_info=page_info(
                after=after,
                has_next=page.has_next,
                start=encode_cursor(rows[0].key) if rows else None,
                end=encode_cursor(rows[-1].key) if rows else None,
            ),
            _scope=scope,
            _filter=given,
            _statuses=list(statuses),
            _counts={},
        )


@strawberry.type
class StatisticsQuery:
    @strawberry.field(
        description="Case statistics for a period: staff see their own department, dispatchers and "
        "administrators any. One row per group, then the total row."
    )
    async def case_statistics(self, info: Info, input: CaseStatisticsInput) -> list[CaseStatisticsRow]:
        user = info.context.require_user()
        rows = await statistics.case_statistics(user, input.to_domain())
        return [CaseStatisticsRow.from_figures(row) for row in rows]

    @strawberry.field(
        description="Public: each department's received, resolved and on-time figures and residents' "
        "ratings for each month (YYYY-MM, both counted, at most 24) of the city's calendar."
    )
    async def transparency(self, from_month: str, to_month: str) -> list[DepartmentMonthFigures]:
        rows = await transparency.department_months(from_month, to_month)
        return [DepartmentMonthFigures.of(row) for row in rows]
