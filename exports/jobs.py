"""Export jobs: started by a reader, run in the background by a runner, followed, cancelled, downloaded.

A job is claimed with a lease (`lease_until`) by a conditional update, so several runners (the
server's, `python -m server worker`'s) never run one job twice at once, and a job whose runner died
is taken over once its lease ends (started again from the beginning). The runner writes the table a
batch at a time to `<id>.part`, records the rows written after each batch and stops as soon as the
job is no longer its own (cancelled, or taken over), removing the partial file. Finished files are
renamed into place and removed when they expire.

The reader's rights are checked when the job starts and again when it runs (as the owner, who may
have lost them meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from exports import access
from exports.formats import EXTENSIONS, open_writer
from exports.models import ExportFormat, ExportJob, ExportKind, ExportStatus
from exports.tables import open_table
from identity import service_accounts
from identity.models import User
from identity.service import Principal
from kernel import clock
from kernel.errors import DomainError, conflict, forbidden, invalid, not_found

log = logging.getLogger("exports")

Progress = Callable[[int, int], Awaitable[None]]  # rows written, rows in all; after each batch


@dataclass(frozen=True, slots=True)
class ExportConfig:
    root: Path  # where files are written (shared by the servers and workers that serve and run them)
    batch_rows: int = 5000
    keep: timedelta = timedelta(hours=24)  # a finished file's life
    lease: timedelta = timedelta(minutes=2)
    poll: float = 2.0


@dataclass(frozen=True, slots=True)
class ExportRequest:
    client_id: str
    kind: ExportKind
    format: ExportFormat
    parameters: dict[str, Any]


# --- starting, reading, cancelling ----------------------------------------------------------------------


async def start_export(principal: Principal, request: ExportRequest) -> ExportJob:
    """A new queued job, or the first one started with this client id (a retry creates nothing)."""
    user = principal.user
    client_id = request.client_id.strip()
    if not 1 <= len(client_id) <= 64:
        raise invalid("Give a client id of 1 to 64 characters.", "input", "clientId")
    found = await ExportJob.get_or_none(owner_id=user.id, client_id=client_id)
    if found is not None:
        return _same_request(found, request)
    access.check_kind(request.kind, request.format is ExportFormat.GEOJSON)
    await open_table(principal, request.kind, request.parameters)  # refuses what the reader may not read
    try:
        job = await ExportJob.create(
            owner_id=user.id,
            client_id=client_id,
            kind=request.kind,
            format=request.format,
            parameters=request.parameters,
            created_at=clock.now(),
        )
    except IntegrityError:  # the same request twice at once: the other one created it
        return _same_request(await ExportJob.get(owner_id=user.id, client_id=client_id), request)
    wake_runners()
    return job


def _same_request(job: ExportJob, request: ExportRequest) -> ExportJob:
    if (job.kind, job.format, job.parameters) != (request.kind, request.format, request.parameters):
        raise conflict("This client id started another export.", "input", "clientId")
    return job


async def visible_job(principal: Principal, job_id: int, *field: str) -> ExportJob:
    job = await ExportJob.get_or_none(id=job_id)
    if job is None or not access.visible_jobs(principal, [job]):
        raise not_found("export", *field)
    return job


async def cancel_export(principal: Principal, job_id: int) -> ExportJob:
    """Stop a queued or running export; its runner notices after the batch in flight and removes the
    partial file. Cancelling a cancelled export again changes nothing."""
    job = await visible_job(principal, job_id, "input", "id")
    if job.status is ExportStatus.CANCELLED:
        return job
    changed = await ExportJob.filter(
        id=job.id, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]
    ).update(status=ExportStatus.CANCELLED, finished_at=clock.now(), lease_until=None)
    job = await ExportJob.get(id=job.id)
    if not changed and job.status is not ExportStatus.CANCELLED:
        raise conflict("The export has finished already.", "input", "id")
    return job


def file_path(config: ExportConfig, job: ExportJob) -> Path | None:
    """The finished file of a job, while it is there to download."""
    if job.status is not ExportStatus.DONE or job.file_name is None:
        return None
    if job.expires_at is None or job.expires_at <= clock.now():
        return None
    return config.root / job.file_name


# --- running --------------------------------------------------------------------------------------------


async def claim(config: ExportConfig, job_id: int | None = None) -> ExportJob | None:
    """The oldest queued job (or this one), or a running one whose runner's lease ended, now ours."""
    now = clock.now()
    waiting = ExportJob.filter(
        Q(status=ExportStatus.QUEUED) | Q(status=ExportStatus.RUNNING, lease_until__lt=now)
    ).order_by("id")
    if job_id is not None:
        waiting = waiting.filter(id=job_id)
    for job in await waiting.limit(5):
        taken = await ExportJob.filter(id=job.id, status=job.status, lease_until=job.lease_until).update(
            status=ExportStatus.RUNNING, lease_until=now + config.lease, started_at=now, rows=0
        )
        if taken:
            await job.refresh_from_db()
            return job
    return None


async def _finish(job: ExportJob, **values: Any) -> bool:
    """Record the end of a job that is still ours; False when it was cancelled or taken over."""
    values.setdefault("finished_at", clock.now())
    mine = ExportJob.filter(id=job.id, status=ExportStatus.RUNNING, lease_until=job.lease_until)
    return bool(await mine.update(lease_until=None, **values))


async def run_job(config: ExportConfig, job: ExportJob, progress: Progress | None = None) -> ExportStatus:
    """Write a claimed job's file, batch by batch; answers how it ended."""
    owner = await User.get_or_none(id=job.owner_id, is_active=True)
    try:
        if owner is None:
            raise forbidden("The account that asked for it is gone.")
        table = await open_table(await service_accounts.principal_of_user(owner), job.kind, job.parameters)
        total = await table.count()
    except DomainError as exc:
        await _finish(job, status=ExportStatus.FAILED, error=exc.message)
        return ExportStatus.FAILED
    if not await _heartbeat(config, job, total_rows=total):
        return ExportStatus.CANCELLED
    config.root.mkdir(parents=True, exist_ok=True)
    name = f"{job.id}-{os.urandom(6).hex()}.{EXTENSIONS[job.format]}"
    partial = config.root / f"{name}.part"
    writer = open_writer(job.format, partial, table.columns, table.point)
    written, closed = 0, False
    try:
        text = job.format is not ExportFormat.XLSX  # spreadsheets get real times, text formats ISO 8601
        async with contextlib.aclosing(table.batches(config.batch_rows, text)) as batches:
            async for batch in batches:
                await anyio.to_thread.run_sync(writer.write, batch)  # the event loop keeps serving meanwhile
                written += len(batch)
                if not await _heartbeat(config, job, rows=written):
                    return ExportStatus.CANCELLED
                if progress is not None:
                    await progress(written, total)
        closed = True  # whatever close does, it is not done twice (xlsxwriter warns, GeoJSON would fail)
        await anyio.to_thread.run_sync(writer.close)
        partial.replace(config.root / name)
        now = clock.now()
        size = (config.root / name).stat().st_size
        if await _finish(job, status=ExportStatus.DONE, rows=written, file_name=name, byte_size=size,
                         finished_at=now, expires_at=now + config.keep):  # fmt: skip
            return ExportStatus.DONE
        (config.root / name).unlink(missing_ok=True)  # cancelled at the last moment
        return ExportStatus.CANCELLED
    except Exception as exc:
        log.exception("export %s failed", job.id)
        await _finish(job, status=ExportStatus.FAILED, error=f"Writing the file failed: {type(exc).__name__}")
        return ExportStatus.FAILED
    finally:
        if not closed:  # stopped early: release the file before removing it
            with contextlib.suppress(Exception):
                writer.close()
        partial.unlink(missing_ok=True)


async def _heartbeat(config: ExportConfig, job: ExportJob, **values: Any) -> bool:
    """Record progress and extend the lease, if the job is still ours."""
    lease = clock.now() + config.lease
    mine = ExportJob.filter(id=job.id, status=ExportStatus.RUNNING, lease_until=job.lease_until)
    if not await mine.update(lease_until=lease, **values):
        return False
    job.lease_until = lease
    return True


async def prune_expired(config: ExportConfig, now: datetime) -> int:
    """Remove the files of exports past their expiry; answers how many."""
    expired = await ExportJob.filter(expires_at__lt=now, file_name__not_isnull=True).values_list(
        "id", "file_name"
    )
    for job_id, name in expired:
        (config.root / name).unlink(missing_ok=True)
        await ExportJob.filter(id=job_id).update(file_name=None)
    return len(expired)


# --- the runner -----------------------------------------------------------------------------------------

runners_here: set[ExportRunner] = set()


def wake_runners() -> None:
    """A job was queued in this process: its runners look now rather than at the next poll."""
    for runner in runners_here:
        runner.wake()


class ExportRunner:
    """Runs queued exports one at a time, in the server (the single-machine default) or in
    `python -m server worker`."""

    PRUNE_SECONDS = 600.0

    def __init__(self, config: ExportConfig) -> None:
        self.config = config
        self._nudged = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._nudged.set()

    def stop(self) -> None:
        self._stopping.set()
        self._nudged.set()

    async def run_once(self) -> ExportStatus | None:
        """Claim and run one job; None when none was waiting."""
        job = await claim(self.config)
        return None if job is None else await run_job(self.config, job)

    async def run(self) -> None:
        runners_here.add(self)
        last_prune = -self.PRUNE_SECONDS
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping.is_set():
                try:
                    while not self._stopping.is_set() and await self.run_once() is not None:
                        pass
                    if loop.time() - last_prune >= self.PRUNE_SECONDS:
                        last_prune = loop.time()
                        await prune_expired(self.config, clock.now())
                except Exception:  # a failed pass must not end the loop; the next one retries
                    log.exception("export runner pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), self.config.poll)
                self._nudged.clear()
        finally:
            runners_here.discard(self)
