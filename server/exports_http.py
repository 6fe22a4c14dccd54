"""The download route of finished exports: a signed link that expires, for its owner only."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from exports import access, links
from exports.formats import CONTENT_TYPES, EXTENSIONS
from exports.jobs import ExportConfig, file_path
from exports.models import ExportJob
from identity.service_accounts import EXPORT_READ, key_has_scope
from kernel import clock
from kernel.errors import ErrorCode
from server.auth import key_principal_of, principal_of
from server.settings import Settings


def export_config(settings: Settings) -> ExportConfig:
    return ExportConfig(
        root=settings.export_root,
        batch_rows=settings.export_batch_rows,
        keep=timedelta(hours=settings.export_keep_hours),
        lease=timedelta(seconds=settings.export_lease_seconds),
        poll=settings.delivery_poll_seconds,
    )


def _error(status: int, code: ErrorCode, message: str) -> Response:
    return JSONResponse({"errors": [{"code": code.value, "message": message}]}, status_code=status)


def export_routes(settings: Settings) -> list[BaseRoute]:
    config = export_config(settings)

    async def download(request: Request) -> Response:
        principal = principal_of(request) or key_principal_of(request)  # a key: its own exports
        if principal is None:
            return _error(401, ErrorCode.UNAUTHENTICATED, "Sign in as the export's owner.")
        if access.is_key(principal) and not key_has_scope(principal, EXPORT_READ):
            return _error(403, ErrorCode.FORBIDDEN, f"This API key lacks the scope {EXPORT_READ}.")
        raw_id = request.path_params["job_id"]
        job = await ExportJob.get_or_none(id=int(raw_id)) if raw_id.isdigit() and len(raw_id) < 19 else None
        # Another user's export answers exactly like a missing one.
        if job is None or job.owner_id != principal.user.id:
            return _error(404, ErrorCode.NOT_FOUND, "No such export.")
        query = request.query_params
        signed = links.link_valid(
            settings.secret_key, job.id, job.owner_id, query.get("expires", ""), query.get("signature", ""),
            clock.now(),
        )  # fmt: skip
        if not signed:
            return _error(
                403, ErrorCode.FORBIDDEN, "The link is not valid or has expired; ask for a new one."
            )
        path = file_path(config, job)
        if path is None or not path.exists():
            return _error(410, ErrorCode.NOT_FOUND, "The file is not there (not finished, or expired).")
        name = f"{job.kind.value.lower()}-{job.id}.{EXTENSIONS[job.format]}"
        return FileResponse(
            path,
            media_type=CONTENT_TYPES[job.format],
            filename=name,
            headers={"Cache-Control": "private, no-store"},
        )

    return [Route(f"{links.PREFIX}/{{job_id}}/download", download, methods=["GET"])]
