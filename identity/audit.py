"""The access log: every read of personal data by staff or admins, and every reveal.

Reads are recorded where the data leaves the system (a GraphQL field, a media download, a track
export) by calling `note_read`. Within an HTTP request the records gather in a request-scoped
buffer (`collecting`) and are written with one multi-row insert once the response has been sent (the
server's RequestLog middleware; the request does not finish before they are written, and a failure to
write them is logged as an error with the request id); outside a request (or when no buffer is
open, e.g. a WebSocket) a record is written at once. A read is recorded once per request: a page
that shows the same phone number twice writes one record.

Only staff, dispatchers and admins are recorded: a resident reading their own data is not a look at
someone else's. Refused attempts (`note_refusal`: an original photo, EXIF or a track export that the
access rules turned away, answered like a missing object) are recorded for every signed-in account,
marked `refused`, so that walking other people's evidence leaves a trace. Nothing in the application
updates or deletes a record (see AccessRecord); admins read the log through `access_log`.
"""

from __future__ import annotations

import contextvars
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


# One record as written: (user_id, role, kind, subject_type, subject_id, purpose, request_id, at, refused).
Row = tuple[int, str, str, str, int, str, str | None, datetime, bool]
COLUMNS = ("user_id", "role", "kind", "subject_type", "subject_id", "purpose", "request_id", "at", "refused")


@dataclass(slots=True)
class _Buffer:
    rows: list[Row] = field(default_factory=list)
    seen: set[tuple[int, str, str, int, bool]] = field(default_factory=set)


_buffer: contextvars.ContextVar[_Buffer | None] = contextvars.ContextVar("access_log_buffer", default=None)


@contextmanager
def collecting() -> Iterator[None]:
    """Gather the records of the code run inside (one request) for `flush`; nested calls share one."""
    if _buffer.get() is not None:
        yield
        return
    token = _buffer.set(_Buffer())
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
    """Write the request's gathered records in one insert (nothing when there are none)."""
    buffer = _buffer.get()
    if buffer is None or not buffer.rows:
        return
    rows, buffer.rows = buffer.rows, []
    await _insert(rows)


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


def access_log(
    principal: Principal,
    *,
    user_id: int | None = None,
    kind: AccessKind | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    refused: bool | None = None,
) -> QuerySet[AccessRecord]:
    """The access log, filtered, for admins; anyone else is FORBIDDEN."""
    if principal.role != Role.ADMIN:
        raise forbidden()
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
