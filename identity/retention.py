"""Retention of identity data: phone numbers of accounts unused past `inactive_phone`, one-time code
challenges and failed sign-ins past `sign_in_records`, and access-log records past `access_log`.

An account is unused when it was created before the cutoff and neither a sign-in (a session) nor a
token refresh happened since. Its phone number and verification go (the account, its reports and its
device key stay: it signs in again by verifying a number); `phone_removed_at` records when. The access
log is append-only for the application: no API changes it, and only this job deletes, whole records,
oldest first, once they are past their period.
"""

from __future__ import annotations

from datetime import datetime

from identity.models import User
from kernel.database import atomic
from kernel.rawsql import qmarks
from kernel.retention import Batches, DataKind, RetentionPolicy, Stopwatch


async def remove_inactive_phones(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.INACTIVE_PHONE, now)
    conn = User._meta.db
    after = 0
    unused = (
        "u.phone IS NOT NULL AND u.created_at < ? "
        "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.created_at >= ?) "
        "AND NOT EXISTS (SELECT 1 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
        "WHERE s.user_id = u.id AND t.created_at >= ?)"
    )

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        _, rows = await conn.execute_query(
            qmarks(conn, f"SELECT u.id FROM users u WHERE u.id > ? AND {unused} ORDER BY u.id LIMIT ?"),
            [after, cutoff, cutoff, cutoff, policy.batch_size],
        )
        ids = [row[0] for row in rows]
        if not ids:
            return None
        after = ids[-1]
        watch = Stopwatch()
        async with atomic() as tx:
            # The condition is read again inside the UPDATE: a sign-in meanwhile keeps the number.
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    "UPDATE users SET phone = NULL, phone_verified_at = NULL, phone_removed_at = ? "
                    f"WHERE id IN ({', '.join('?' * len(ids))}) AND id IN "
                    f"(SELECT u.id FROM users u WHERE {unused})",
                ),
                [now, *ids, cutoff, cutoff, cutoff],
            )
        return changed, watch.seconds()

    await batches.run(DataKind.INACTIVE_PHONE.value, batch)


async def _delete_older(
    table: str, column: str, cutoff: datetime, size: int, batches: Batches, kind: str
) -> None:
    async def batch() -> tuple[int, float] | None:
        watch = Stopwatch()
        async with atomic() as tx:
            deleted, _ = await tx.execute_query(
                qmarks(
                    tx,
                    f"DELETE FROM {table} WHERE id IN "
                    f"(SELECT id FROM {table} WHERE {column} < ? ORDER BY id LIMIT ?)",
                ),
                [cutoff, size],
            )
        return (deleted, watch.seconds()) if deleted else None

    await batches.run(kind, batch)


async def prune_sign_in_records(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.SIGN_IN_RECORDS, now)
    kind = DataKind.SIGN_IN_RECORDS.value
    await _delete_older("otp_challenges", "created_at", cutoff, policy.batch_size, batches, kind)
    await _delete_older("sign_in_failures", "created_at", cutoff, policy.batch_size, batches, kind)


async def prune_access_log(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.ACCESS_LOG, now)
    await _delete_older("access_log", "at", cutoff, policy.batch_size, batches, DataKind.ACCESS_LOG.value)
