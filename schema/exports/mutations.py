"""Mutations of exports: start one (kept for its owner), cancel it."""

from __future__ import annotations

import strawberry

from exports import access, jobs
from schema.context import Info
from schema.errors import payload_mutation
from schema.exports.inputs import ExportCancelInput, ExportStartInput
from schema.exports.types import ExportNode, ExportPayload
from schema.node import decode_id


@strawberry.type
class ExportsMutation:
    @payload_mutation(
        "Start exporting cases, statistics or patrol compliance to CSV, XLSX or GeoJSON; follow the Export "
        "until its downloadUrl appears. What may be exported follows the reader's access (docs/exports.md)."
    )
    async def export_start(self, info: Info, input: ExportStartInput) -> ExportPayload:
        job = await jobs.start_export(access.require_reader(info.context.caller()), input.to_domain())
        return ExportPayload(export=ExportNode.from_model(job))

    @payload_mutation("Stop an export that has not finished; its partial file is removed.")
    async def export_cancel(self, info: Info, input: ExportCancelInput) -> ExportPayload:
        principal = access.require_reader(info.context.caller())
        job = await jobs.cancel_export(principal, decode_id(input.id, "Export", "input", "id"))
        return ExportPayload(export=ExportNode.from_model(job))
