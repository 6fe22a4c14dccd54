"""The access log: every read of personal data by staff or admins, and every reveal.

Reads are recorded where the data leaves the system (a GraphQL field, a media download, a track
export) by calling `note_read`. Within an HTTP request the records gather in a request-scoped
buffer (`collecting`) that is handed on once the response has been sent (the server's RequestLog
middleware): to the app's `GroupWriter`, which writes the records of many requests in one multi-row
insert a short delay later (or at once with a delay of 0), and is flushed before an admin reads the
log (`access_log`) and at shutdown. Outside a request (or when no buffer is open, e.g. a WebSocket)
a record is written at once. A read is recorded once per request: a page that shows the same phone
number twice writes one record.

Only staff, dispatchers and admins are recorded: a resident reading their own data is not a look at
someone else's. Refused attempts (`note_refusal`: an original photo, EXIF or a track export that the
access rules turned away, answered like a missing object) are recorded for every signed-in account,
marked `refused`, so that walking other people's evidence leaves a trace. Nothing in the application
updates or deletes a record (see AccessRecord); admins read the log through `access_log`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.queryset import QuerySet

from identity.access import STAFF_ROLES
from identity.models import AccessKind, AccessRecord, Role
from identity.service import Principal
from kernel import clock
from kernel.errors import forbidden, invalid
from kernel.logs import request_id
from kernel.rawsql import placeholders

MAX_PURPOSE = 1000

log = logging.getLogger("identity.audit")


# One record as written: (user_id, role, kind, subject_type, subject_id, purpose, request_id, at, refused).
Row = tuple[int, str, str, str, int, str, str | None, datetime, bool]
COLUMNS = ("user_id", "role", "kind", "subject_type", "subject_id", "purpose", "request_id", "at", "refused")


class GroupWriter:
    """Writes the records of many requests in one insert, `delay` seconds after the first of them
    arrived: a commit per request (a file sync on SQLite) was most of what the log cost a staff read.

    Records keep their own time and request id; only the insert waits. What `close` (the server's
    shutdown) writes is never lost; a process killed outright loses at most the delay's worth.
    """

    def __init__(self, delay_seconds: float) -> None:
        self.delay = delay_seconds
        self._rows: list[Row] = []
        self._lock = asyncio.Lock()  # one write at a time, so `flush` also waits for one in flight
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    async def add(self, rows: list[Row]) -> None:
        """Hold `rows` for the next group insert; with no delay (or once closed), write them now."""
        if self.delay <= 0 or self._closed:
            await _insert(rows)
            return
        self._rows.extend(rows)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None or not self._rows or self._closed:
            return
        # Outside the request's context: the writer's own log lines belong to no request.
        context = contextvars.copy_context()
        context.run(request_id.set, None)
        self._timer = asyncio.create_task(self._write_later(), context=context)

    async def _write_later(self) -> None:
        await asyncio.sleep(self.delay)
        self._timer = None  # from here on `close` waits for this write instead of cancelling it
        try:
            await self.flush()
        except Exception:  # the records are kept and retried after another delay
            log.exception("access log: %d records could not be written yet", len(self._rows))

    async def flush(self) -> None:
        """Write every record held, after a write in flight: what was recorded is then readable.

        When the insert fails, the records are kept for another attempt and the error is raised.
        """
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return
            try:
                await _insert(rows)
            except BaseException:
                self._rows[:0] = rows
                self._schedule()
                raise

    async def close(self) -> None:
        """Write what is held, stop the timer and write later records at once (the server's shutdown)."""
        self._closed = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        try:
            await self.flush()
        except Exception:
            ids = ", ".join(sorted({row[6] or "-" for row in self._rows}))
            log.exception("access log: %d records of requests %s are lost", len(self._rows), ids)
            self._rows = []


@dataclass(slots=True)
class _Buffer:
    writer: GroupWriter | None
    rows: list[Row] = field(default_factory=list)
    seen: set[tuple[int, str, str, int, bool]] = field(default_factory=set)


_buffer: contextvars.ContextVar[_Buffer | None] = contextvars.ContextVar("access_log_buffer", default=None)


@contextmanager
def collecting(writer: GroupWriter | None = None) -> Iterator[None]:
    """Gather the records of the code run inside (one request) for `flush`, which hands them to
    `writer` (None: writes them itself); nested calls share one buffer."""
    if _buffer.get() is not None:
        yield
        return
    token = _buffer.set(_Buffer(writer))
    try:
        yield
    finally:
        _buffer.reset(token)


def recorded(principal: Principal | None) -> bool:
    """Whose reads are recorded: staff, dispatchers and admins."""
    return principal is not None and principal.role in STAFF_ROLES


def _row(
    principal: Principal, kind: AccessKind, subject_type: str, subject_id: int, purpose: str, refused: bool
) -> Row:
    return (
        principal.user.id,
        principal.role.value,
        kind.value,
        subject_type,
        subject_id,
        purpose,
        request_id.get(),
        clock.now(),
        refused,
    )


# PostgreSQL: one statement in its own transaction, which it commits asynchronously (`set_config(...,
# true)` applies to that transaction): the writer does not wait for the WAL flush (about 3 ms of a
# 7-row insert's 3.8 ms on the development machine), which PostgreSQL does within a fraction of a
# second. Only a crash of the database server in that moment could lose these rows, never corrupt them.
PG_TYPES = ("int", "text", "text", "text", "bigint", "text", "text", "timestamptz", "boolean")
PG_INSERT = (
    f"INSERT INTO access_log ({', '.join(COLUMNS)}) SELECT v.* FROM (VALUES {{}}) AS v({', '.join(COLUMNS)}) "
    "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
)


async def _insert(rows: list[Row]) -> None:
    """One multi-row INSERT, without building model objects: the cheap path of every staff read."""
    conn = AccessRecord._meta.db
    postgres = conn.capabilities.dialect == "postgres"
    for start in range(0, len(rows), 100):  # bounded statements (SQLite allows 32766 parameters)
        chunk = rows[start : start + 100]
        marks = iter(placeholders(conn, len(COLUMNS) * len(chunk)))
        if postgres:
            typed = ("(" + ", ".join(f"{next(marks)}::{t}" for t in PG_TYPES) + ")" for _ in chunk)
            sql = PG_INSERT.format(", ".join(typed))
        else:
            values = ", ".join("(" + ", ".join(next(marks) for _ in COLUMNS) + ")" for _ in chunk)
            sql = f"INSERT INTO access_log ({', '.join(COLUMNS)}) VALUES {values}"
        await conn.execute_query(sql, [value for row in chunk for value in row])


async def note_read(
    principal: Principal | None, kind: AccessKind, subject_type: str, *subject_ids: int, purpose: str = ""
) -> None:
    """Record that `principal` read `kind` data of the subjects (when their reads are recorded).

    Buffered within a request (written by `flush`), else written now.
    """
    if recorded(principal):
        assert principal is not None
        await _note(principal, kind, subject_type, subject_ids, purpose, refused=False)


async def note_refusal(
    principal: Principal | None, kind: AccessKind, subject_type: str, subject_id: int
) -> None:
    """Record that `principal` asked for `kind` data of the subject and was refused (any signed-in
    account; an anonymous caller names nobody). Missing subjects are recorded alike: the attempt is
    the same, and the log must not answer differently for them."""
    if principal is not None:
        await _note(principal, kind, subject_type, (subject_id,), "", refused=True)


async def _note(
    principal: Principal,
    kind: AccessKind,
    subject_type: str,
    subject_ids: Sequence[int],
    purpose: str,
    *,
    refused: bool,
) -> None:
    if not subject_ids:
        return
    buffer = _buffer.get()
    if buffer is None:
        ids = dict.fromkeys(subject_ids)
        await _insert([_row(principal, kind, subject_type, i, purpose, refused) for i in ids])
        return
    for subject_id in subject_ids:
        key = (principal.user.id, kind.value, subject_type, subject_id, refused)
        if key not in buffer.seen:
            buffer.seen.add(key)
            buffer.rows.append(_row(principal, kind, subject_type, subject_id, purpose, refused))


async def flush() -> None:
    """Hand the request's gathered records to its writer, or write them in one insert (nothing when
    there are none)."""
    buffer = _buffer.get()
    if buffer is None or not buffer.rows:
        return
    rows, buffer.rows = buffer.rows, []
    if buffer.writer is not None:
        await buffer.writer.add(rows)
    else:
        await _insert(rows)


async def _written() -> None:
    """Write what this process's writer holds, so a read of the log that follows sees every record."""
    buffer = _buffer.get()
    if buffer is not None and buffer.writer is not None:
        await buffer.writer.flush()


def check_reason(reason: str | None) -> str:
    """The reason given for a reveal, trimmed: INVALID when missing, blank or too long."""
    reason = (reason or "").strip()
    if not reason:
        raise invalid("A reveal needs the reason it is made for.", "input", "reason")
    if len(reason) > MAX_PURPOSE:
        raise invalid(f"At most {MAX_PURPOSE} characters.", "input", "reason")
    return reason


async def record_reveal(
    principal: Principal, subject_type: str, subject_id: int, reason: str
) -> AccessRecord:
    """Record a reveal at once (not buffered), before the identity is shown: the reason is required."""
    reason = check_reason(reason)
    return await AccessRecord.create(
        user_id=principal.user.id,
        role=principal.role.value,
        kind=AccessKind.REVEAL,
        subject_type=subject_type,
        subject_id=subject_id,
        purpose=reason,
        request_id=request_id.get(),
        at=clock.now(),
    )


async def access_log(
    principal: Principal,
    *,
    user_id: int | None = None,
    kind: AccessKind | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    refused: bool | None = None,
) -> QuerySet[AccessRecord]:
    """The access log, filtered, for admins; anyone else is FORBIDDEN. The records this process still
    holds back are written first, so the admin sees every read recorded before theirs."""
    if principal.role != Role.ADMIN:
        raise forbidden()
    await _written()
    rows = AccessRecord.all()
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    if kind is not None:
        rows = rows.filter(kind=kind)
    if subject_type is not None:
        rows = rows.filter(subject_type=subject_type)
    if subject_id is not None:
        rows = rows.filter(subject_id=subject_id)
    if refused is not None:
        rows = rows.filter(refused=refused)
    return rows


def visible_records(principal: Principal | None, rows: Sequence[AccessRecord]) -> Sequence[AccessRecord]:
    """Access records are for admins only."""
    return rows if principal is not None and principal.role == Role.ADMIN else []
