"""An export job: what was asked, by whom, how far it got, and the file it wrote."""

from __future__ import annotations

import enum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class ExportKind(enum.StrEnum):
    CASES = "CASES"
    STATISTICS = "STATISTICS"
    COMPLIANCE = "COMPLIANCE"
    OFFICE_FIGURES = "OFFICE_FIGURES"


class ExportFormat(enum.StrEnum):
    CSV = "CSV"
    XLSX = "XLSX"
    GEOJSON = "GEOJSON"


class ExportStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = (ExportStatus.DONE, ExportStatus.FAILED, ExportStatus.CANCELLED)


class ExportJob(Model):
    id = fields.BigIntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Any] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    owner_id: int
    # The client's token for this request: a retried `exportStart` finds the first job.
    client_id = fields.CharField(max_length=64)
    kind = fields.CharEnumField(ExportKind, max_length=16)
    format = fields.CharEnumField(ExportFormat, max_length=8)
    # The checked request (filters, period), as exports.tables reads it back.
    parameters: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    status = fields.CharEnumField(ExportStatus, max_length=16, default=ExportStatus.QUEUED)
    rows = fields.BigIntField(default=0)  # written so far
    total_rows = fields.BigIntField(null=True)  # counted when the job starts; null until then
    # A runner holds a running job until then; past it, another runner takes the job over.
    lease_until = fields.DatetimeField(null=True)
    file_name = fields.CharField(max_length=128, null=True)
    byte_size = fields.BigIntField(null=True)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)  # the file is removed then, and links stop working

    class Meta:
        table = "export_job"
        table_description = "Exports of cases, statistics and patrol compliance, run in the background"
        unique_together = (("owner", "client_id"),)
        indexes = (("status", "id"),)
