"""The Export node: a background export its owner follows until the download link appears."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import strawberry
from strawberry import relay

from exports import access, links
from exports.models import ExportFormat, ExportJob, ExportKind, ExportStatus
from identity.service import Principal
from kernel import clock
from schema.context import Info
from schema.errors import UserError
from schema.node import ModelNode


@strawberry.type(
    name="Export",
    description="A file of cases, statistics or patrol compliance, written in the background. Its owner's "
    "only.",
)
class ExportNode(ModelNode[ExportJob]):
    model = ExportJob
    key_visible = True  # an export:read key reads its own exports
    id: relay.NodeID[int]
    kind: ExportKind
    format: ExportFormat
    status: ExportStatus
    rows: int = strawberry.field(description="Rows written so far.")
    total_rows: int | None = strawberry.field(description="Rows in all; null until the job has counted them.")
    byte_size: int | None
    error: str | None = strawberry.field(description="Why it FAILED.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="When the file is removed.")
    _row: strawberry.Private[ExportJob]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[ExportJob]) -> Sequence[ExportJob]:
        return access.visible_jobs(principal, rows)

    @strawberry.field(description="Share done, 0 to 1; null until the rows are counted.")
    def progress(self) -> float | None:
        if self.status is ExportStatus.DONE:
            return 1.0
        if self.total_rows is None:
            return None
        return min(1.0, self.rows / self.total_rows) if self.total_rows else 0.0

    @strawberry.field(
        description="When DONE and not expired: a signed link to the file, valid for a short while and only "
        "with the owner's access token (ask again for a fresh one)."
    )
    def download_url(self, info: Info) -> str | None:
        now = clock.now()
        if self.status is not ExportStatus.DONE or self._row.file_name is None:
            return None
        if self.expires_at is None or self.expires_at <= now:
            return None
        services = info.context.services
        assert services is not None
        settings = services.settings
        ttl = timedelta(seconds=settings.export_link_seconds)
        path = links.download_path(settings.secret_key, self._row.id, self._row.owner_id, now, ttl)
        return f"{str(info.context.request.base_url).rstrip('/')}{path}"


@strawberry.type
class ExportPayload:
    export: ExportNode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
