"""The light types of a department's queue page: GraphQL's hottest read, 50 rows of about 15 fields.

Their fields are plain attributes (strawberry's sync default resolver) over rows `reports.queue` has
already joined in one statement, so no field awaits anything (an async field costs about 35 µs more per
row than a sync one); they stay off `ModelNode`'s generic copying on purpose. Only the counts are
async, and they are read once whether a query asks for `statusCounts`, `totalCount` or both.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from media.intake import derivative_key
from reports import queue
from reports.lifecycle import Status
from reports.models import Priority
from reports.queue import QueueFilter, QueueRow, Scope
from schema.pagination import encode_cursor


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
class CaseQueueConnection:
    # Not a relay.Connection: its items are not Nodes, and its edges encode their cursor on demand.
    page_info: relay.PageInfo = strawberry.field(description="Pagination data for this connection")
    edges: list[CaseQueueEdge]
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
