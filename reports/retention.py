"""Retention of reports and cases: personal fields removed once a case has ended long enough ago.

What stays is what the case's record and the statistics need: category, department, status, times,
the case's public place, photo ids, the case log (`case_events`, append-only, never touched here; the
statistics read only it). What goes:

- a report (`report_personal`): the link to its reporter (moved to one retired account that cannot
  sign in), its client id and fingerprint, its words, its evidence values, its exact and original
  places (set to the case's public place, a grid-cell centre for categories reported at homes), its
  accuracy and contact consent; it becomes anonymous.
- a case (`closed_case_personal`): its summary (the first report's words), its resolution note, its
  exact place (set to its public place).

A case has ended when it is CLOSED (from `closed_at`), or REJECTED or MERGED (from `status_changed_at`).
Each batch is one short transaction whose UPDATE is conditional on `anonymized_at IS NULL` and sets
it, so a batch is done whole or not at all, and two processes never anonymize one row twice.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from identity.models import Role, User
from kernel.database import atomic
from kernel.rawsql import qmarks
from kernel.retention import Batches, DataKind, RetentionPolicy, Stopwatch
from reports.lifecycle import Status
from reports.models import Case

# The account anonymized reports point at: inactive, with no phone, password or device key.
RETIRED_REPORTER_USERNAME = "retention:retired-reporter"

_ENDED = (
    "(({plus}c.status = ? AND c.closed_at < ?) OR ({plus}c.status IN (?, ?) AND c.status_changed_at < ?))"
)


def _ended(conn: BaseDBAsyncClient) -> str:
    """The ended-case condition. SQLite would answer it from the status index, reading every ended case
    for each batch; a unary plus keeps it to the primary-key range the batch walks (PostgreSQL's
    planner picks that range by itself, and has no unary plus for text)."""
    return _ENDED.format(plus="+" if conn.capabilities.dialect == "sqlite" else "")


# A report's place becomes its case's public place.
_PUBLIC_LAT = "(SELECT public_latitude FROM cases WHERE cases.id = reports.case_id)"
_PUBLIC_LON = "(SELECT public_longitude FROM cases WHERE cases.id = reports.case_id)"


def _ended_params(cutoff: datetime) -> list[object]:
    return [Status.CLOSED.value, cutoff, Status.REJECTED.value, Status.MERGED.value, cutoff]


async def retired_reporter_id() -> int:
    user = await User.get_or_none(username=RETIRED_REPORTER_USERNAME)
    if user is None:
        try:
            user = await User.create(
                role=Role.CITIZEN, username=RETIRED_REPORTER_USERNAME, display_name="", is_active=False
            )
        except IntegrityError:  # another process created it meanwhile
            user = await User.get(username=RETIRED_REPORTER_USERNAME)
    return user.id


async def anonymize_reports(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.REPORT_PERSONAL, now)
    retired = await retired_reporter_id()
    conn = Case._meta.db
    after = 0

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        # A plain read: it locks nothing (least of all `cases`); the UPDATE below re-checks the mark.
        select = qmarks(
            conn,
            "SELECT r.id FROM reports r JOIN cases c ON c.id = r.case_id "
            f"WHERE r.id > ? AND r.anonymized_at IS NULL AND {_ended(conn)} ORDER BY r.id LIMIT ?",
        )
        _, rows = await conn.execute_query(select, [after, *_ended_params(cutoff), policy.batch_size])
        ids = [row[0] for row in rows]
        if not ids:
            return None
        after = ids[-1]
        marks = ", ".join("?" * len(ids))
        watch = Stopwatch()
        async with atomic() as tx:
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    "UPDATE reports SET reporter_id = ?, client_id = 'retired-' || id, fingerprint = '', "
                    "description = '', evidence = '{}', anonymous = ?, contact_consent = ?, "
                    "accuracy_m = NULL, "
                    f"latitude = {_PUBLIC_LAT}, longitude = {_PUBLIC_LON}, "
                    f"original_latitude = {_PUBLIC_LAT}, original_longitude = {_PUBLIC_LON}, "
                    "crs = 'WGS84', anonymized_at = ? "
                    f"WHERE id IN ({marks}) AND anonymized_at IS NULL",
                ),
                [retired, True, False, now, *ids],
            )
        return changed, watch.seconds()

    await batches.run(DataKind.REPORT_PERSONAL.value, batch)


async def anonymize_cases(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.CLOSED_CASE_PERSONAL, now)
    conn = Case._meta.db
    after = 0

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        select = qmarks(
            conn,
            f"SELECT c.id FROM cases c WHERE c.id > ? AND c.anonymized_at IS NULL AND {_ended(conn)} "
            "ORDER BY c.id LIMIT ?",
        )
        _, rows = await conn.execute_query(select, [after, *_ended_params(cutoff), policy.batch_size])
        ids = [row[0] for row in rows]
        if not ids:
            return None
        after = ids[-1]
        marks = ", ".join("?" * len(ids))
        # The only transaction that writes `cases`: one batch of rows, held for one UPDATE.
        watch = Stopwatch()
        async with atomic() as tx:
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    "UPDATE cases SET summary = '', resolution_note = '', latitude = public_latitude, "
                    f"longitude = public_longitude, anonymized_at = ? WHERE id IN ({marks}) "
                    "AND anonymized_at IS NULL",
                ),
                [now, *ids],
            )
        return changed, watch.seconds()

    await batches.run(DataKind.CLOSED_CASE_PERSONAL.value, batch)
