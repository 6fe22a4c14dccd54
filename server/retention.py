"""The retention job: every domain's removal of personal data past its period (kernel.retention), in
batches of short transactions. Cron-safe and safe in several processes at once; see docs/privacy.md."""

from __future__ import annotations

from datetime import datetime

from identity import retention as identity_retention
from kernel import clock
from kernel.retention import Batches, BatchLimitReached, RetentionPolicy, Tally
from media import retention as media_retention
from media.storage import Storage
from patrols import retention as patrol_retention
from reports import retention as report_retention


async def run_retention(
    policy: RetentionPolicy,
    storage: Storage,
    *,
    now: datetime | None = None,
    max_batches: int | None = None,
) -> Tally:
    """One pass over every kind of data. `max_batches` stops it after that many batches (the rest waits
    for the next pass; what was done is whole)."""
    now = now or clock.now()
    tally = Tally()
    batches = Batches(tally, max_batches)
    try:
        await report_retention.anonymize_reports(policy, now, batches)
        await report_retention.anonymize_cases(policy, now, batches)
        await media_retention.clear_exif(policy, now, batches)
        await media_retention.remove_originals(policy, now, batches, storage, tally)
        await patrol_retention.remove_tracks(policy, now, batches)
        await identity_retention.remove_inactive_phones(policy, now, batches)
        await identity_retention.prune_sign_in_records(policy, now, batches)
        await identity_retention.prune_access_log(policy, now, batches)
    except BatchLimitReached:
        pass
    return tally
