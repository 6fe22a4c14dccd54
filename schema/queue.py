"""GraphQL for department queues: the `departmentQueue` connection, assigning, and bulk accept.

A queue page is GraphQL's hottest read: 50 rows of about 15 fields each. Its items are light types
whose fields are plain attributes (strawberry's sync default resolver) over rows `reports.queue` has
already joined, so no field awaits anything (an async field costs about 35 µs more per row than a sync
one). Only the counts are async, and they are read once
whether a query asks for `statusCounts`, `totalCount` or both.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from kernel.errors import invalid
from kernel.geo import BBox
from media.intake import derivative_key
from reports import queue
from reports.lifecycle import Status
from reports.models import Priority
from reports.queue import QueueFilter, QueueOrder, QueueRow, Scope
from schema.casework import CasePayload
from schema.context import Info
from schema.errors import UserError, payload_mutation, user_errors
from schema.node import decode_id
from schema.pagination import MAX_PAGE_SIZE, decode_cursor, encode_cursor, page_info
from schema.reports.inputs import BBoxInput
from schema.reports.types import CaseNode

# The cursor's key names per order (their count checks a cursor's shape).
CURSOR_KEYS = {
    QueueOrder.CREATED: ("id",),
    QueueOrder.PRIORITY: ("priority", "id"),
    QueueOrder.DUE: ("noDue", "due", "id"),
}


@strawberry.input(description="Every given condition must hold.")
class CaseQueueFilter:
    statuses: list[Status] | None = strawberry.field(
        default=None,
        description="Default: the statuses a department works in (ROUTED, ACCEPTED, IN_PROGRESS, "
        "REOPENED); TRIAGE and RETURNED for the triage queue.",
    )
    category_code: str | None = None
    priorities: list[Priority] | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="True: its active due time has passed; false: it has not (or none)."
    )
    due_before: datetime | None = strawberry.field(default=None, description="Active due time before this.")
    bbox: BBoxInput | None = None
    text: str | None = strawberry.field(default=None, description="In the summary or the reference.")

    def to_domain(self) -> QueueFilter:
        box = self.bbox
        return QueueFilter(
            statuses=[Status(s.value) for s in self.statuses] if self.statuses is not None else None,
            category_code=self.category_code,
            priorities=self.priorities,
            overdue=self.overdue,
            due_before=self.due_before,
            bbox=BBox(box.min_latitude, box.min_longitude, box.max_latitude, box.max_longitude)
            if box
            else None,
            text=self.text,
        )


@strawberry.type(description="A category as a queue row shows it.")
class CaseQueueCategory:
    id: strawberry.ID
    code: str
    name_zh: str
    name_en: str


@strawberry.type(description="A department as a queue row shows it.")
class CaseQueueDepartment:
    id: strawberry.ID
    code: str
    name: str


@strawberry.type(description="A staff member as a queue row shows them.")
class CaseQueueAssignee:
    id: strawberry.ID
    display_name: str


@strawberry.type(description="One case in a queue: what the list shows. Open it with `node(id:)` for more.")
class CaseQueueItem:
    id: strawberry.ID = strawberry.field(description="The case's global id (a Case).")
    reference: str
    status: Status
    version: int
    priority: Priority
    reporter_count: int
    category: CaseQueueCategory
    department: CaseQueueDepartment | None
    assignee: CaseQueueAssignee | None
    thumbnail_url: str | None = strawberry.field(description="The first photo's 320 px rendition.")
    due_at: datetime | None = strawberry.field(
        description="Response due while ROUTED, resolution due while worked, else null."
    )
    overdue: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: QueueRow, media_base: str) -> CaseQueueItem:
        department = None
        if row.department_id is not None:
            department = CaseQueueDepartment(
                id=strawberry.ID(relay.to_base64("Department", row.department_id)),
                code=row.department_code or "",
                name=row.department_name or "",
            )
        assignee = None
        if row.assignee_id is not None:
            assignee = CaseQueueAssignee(
                id=strawberry.ID(relay.to_base64("User", row.assignee_id)),
                display_name=row.assignee_name or "",
            )
        return cls(
            id=strawberry.ID(relay.to_base64("Case", row.id)),
            reference=row.reference,
            status=row.status,
            version=row.version,
            priority=row.priority,
            reporter_count=row.reporter_count,
            category=CaseQueueCategory(
                id=strawberry.ID(relay.to_base64("Category", row.category_id)),
                code=row.category_code,
                name_zh=row.category_name_zh,
                name_en=row.category_name_en,
            ),
            department=department,
            assignee=assignee,
            thumbnail_url=media_base + derivative_key(row.thumb_sha256, "thumb")
            if row.thumb_sha256
            else None,
            due_at=row.due_at,
            overdue=row.overdue,
            created_at=row.created_at,
        )


@strawberry.type
class CaseQueueEdge:
    node: CaseQueueItem
    _key: strawberry.Private[tuple[Any, ...]]

    @strawberry.field
    def cursor(self) -> str:
        # Encoded only when asked: a list that reads `nodes` needs the page's end cursor alone.
        return encode_cursor(self._key)


@strawberry.type(description="How many cases of the queue are in a status (under the other filters).")
class CaseStatusCount:
    status: Status
    count: int


@strawberry.type
class CaseQueueConnection(relay.Connection[CaseQueueItem]):
    edges: list[CaseQueueEdge]  # type: ignore[assignment]  # edges whose cursor is encoded on demand
    _scope: strawberry.Private[Scope]
    _filter: strawberry.Private[QueueFilter]
    _statuses: strawberry.Private[list[Status]]
    _counts: strawberry.Private[dict[str, Any]]  # the one counting task, shared by both count fields

    @strawberry.field
    def nodes(self) -> list[CaseQueueItem]:
        return [edge.node for edge in self.edges]

    async def _status_counts(self) -> dict[Status, int]:
        if "task" not in self._counts:
            self._counts["task"] = asyncio.ensure_future(queue.status_counts(self._scope, self._filter))
        return await self._counts["task"]

    @strawberry.field(description="Cases per status under every filter but the statuses: for tabs.")
    async def status_counts(self) -> list[CaseStatusCount]:
        counts = await self._status_counts()
        return [CaseStatusCount(status=s, count=counts[s]) for s in Status if counts.get(s)]

    @strawberry.field(description="Cases matching the whole filter, on all pages.")
    async def total_count(self) -> int:
        counts = await self._status_counts()
        return sum(counts.get(s, 0) for s in self._statuses)


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


@strawberry.input
class CaseAssignInput:
    case_id: strawberry.ID
    assignee_id: strawberry.ID | None = strawberry.field(
        description="A staff member of the case's department; null takes the case back from its assignee."
    )


@strawberry.input
class CaseAcceptItemInput:
    case_id: strawberry.ID
    expected_version: int | None = None


@strawberry.input
class CasesAcceptInput:
    cases: list[CaseAcceptItemInput] = strawberry.field(description=f"1 to {queue.MAX_BULK_ACCEPT} cases.")


@strawberry.type(description="What became of one case of a bulk accept.")
class CaseAcceptResult:
    case_id: strawberry.ID
    case: CaseNode | None = strawberry.field(description="The accepted case; null when refused.")
    user_errors: list[UserError]


@strawberry.type
class CasesAcceptPayload:
    results: list[CaseAcceptResult] = strawberry.field(default_factory=list, description="In input order.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Refusals of the whole request (e.g. too many cases)."
    )


@strawberry.type
class QueueMutation:
    @payload_mutation(
        "Give a case to a staff member of its department (or take it back with a null assignee). "
        "The department's staff or dispatchers. Sending the same assignment again changes nothing."
    )
    async def case_assign(self, info: Info, input: CaseAssignInput) -> CasePayload:
        user = info.context.require_user()
        case_id = decode_id(input.case_id, "Case", "input", "caseId")
        assignee = decode_id(input.assignee_id, "User", "input", "assigneeId") if input.assignee_id else None
        case = await queue.assign_case(user, case_id, assignee, info.context.events)
        return CasePayload(case=CaseNode.from_model(case))

    @payload_mutation(
        "Accept several routed cases at once; each is its own step (a stale version or a wrong state "
        "refuses that case only). Pass each case's expectedVersion to detect concurrent changes."
    )
    async def cases_accept(self, info: Info, input: CasesAcceptInput) -> CasesAcceptPayload:
        user = info.context.require_user()
        if not 1 <= len(input.cases) <= queue.MAX_BULK_ACCEPT:
            raise invalid(f"Give 1 to {queue.MAX_BULK_ACCEPT} cases.", "input", "cases")
        items = [
            queue.AcceptItem(
                decode_id(item.case_id, "Case", "input", "cases", str(i), "caseId"), item.expected_version
            )
            for i, item in enumerate(input.cases)
        ]
        results = await queue.accept_cases(user, items, info.context.events)
        return CasesAcceptPayload(
            results=[
                CaseAcceptResult(
                    case_id=strawberry.ID(relay.to_base64("Case", result.case_id)),
                    case=CaseNode.from_model(result.case) if result.case else None,
                    user_errors=user_errors(result.error) if result.error else [],
                )
                for result in results
            ]
        )
