"""Retention of photos: EXIF evidence (`photo_exif`) and originals (`photo_original`) past their period.

EXIF: one conditional UPDATE per batch clears the position and camera and sets `exif_removed_at`.
Originals: a batch's transaction sets `original_removed_at` (from then on the original is not served);
after the commit the files go, and `original_file_removed_at` records it. A run killed between the two
leaves rows marked with their file still stored; every run first finishes those. Originals are
content-addressed and shared by owners of the same bytes: a file goes only once no photo of those bytes
still keeps its original. Derivatives (display, thumbnail: no EXIF) stay.
"""

from __future__ import annotations

from datetime import datetime

from kernel.database import atomic
from kernel.rawsql import qmarks
from kernel.retention import Batches, DataKind, RetentionPolicy, Stopwatch, Tally
from media.intake import original_key
from media.models import Photo
from media.storage import Storage


async def clear_exif(policy: RetentionPolicy, now: datetime, batches: Batches) -> None:
    cutoff = policy.cutoff(DataKind.PHOTO_EXIF, now)
    conn = Photo._meta.db
    after = 0

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        ids = [
            row[0]
            for row in (
                await conn.execute_query(
                    qmarks(
                        conn,
                        "SELECT id FROM photos WHERE id > ? AND created_at < ? AND exif_removed_at IS NULL "
                        "ORDER BY id LIMIT ?",
                    ),
                    [after, cutoff, policy.batch_size],
                )
            )[1]
        ]
        if not ids:
            return None
        after = ids[-1]
        watch = Stopwatch()
        async with atomic() as tx:
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    "UPDATE photos SET exif_latitude = NULL, exif_longitude = NULL, camera_make = NULL, "
                    f"camera_model = NULL, exif_removed_at = ? WHERE id IN ({', '.join('?' * len(ids))}) "
                    "AND exif_removed_at IS NULL",
                ),
                [now, *ids],
            )
        return changed, watch.seconds()

    await batches.run(DataKind.PHOTO_EXIF.value, batch)


async def remove_originals(
    policy: RetentionPolicy, now: datetime, batches: Batches, storage: Storage, tally: Tally
) -> None:
    cutoff = policy.cutoff(DataKind.PHOTO_ORIGINAL, now)
    conn = Photo._meta.db
    await _remove_marked_files(storage, now, tally)  # left by a run that stopped after its commit
    after = 0

    async def batch() -> tuple[int, float] | None:
        nonlocal after
        rows = (
            await conn.execute_query(
                qmarks(
                    conn,
                    "SELECT id FROM photos WHERE id > ? AND created_at < ? AND original_removed_at IS NULL "
                    "ORDER BY id LIMIT ?",
                ),
                [after, cutoff, policy.batch_size],
            )
        )[1]
        ids = [row[0] for row in rows]
        if not ids:
            return None
        after = ids[-1]
        watch = Stopwatch()
        async with atomic() as tx:
            changed, _ = await tx.execute_query(
                qmarks(
                    tx,
                    f"UPDATE photos SET original_removed_at = ? WHERE id IN ({', '.join('?' * len(ids))}) "
                    "AND original_removed_at IS NULL",
                ),
                [now, *ids],
            )
        seconds = watch.seconds()
        await _remove_marked_files(storage, now, tally, ids)
        return changed, seconds

    await batches.run(DataKind.PHOTO_ORIGINAL.value, batch)


async def _remove_marked_files(
    storage: Storage, now: datetime, tally: Tally, ids: list[int] | None = None
) -> None:
    """Remove the files of photos marked as having given up their original and not yet cleaned."""
    query = Photo.filter(original_removed_at__isnull=False, original_file_removed_at__isnull=True)
    if ids is not None:
        query = query.filter(id__in=ids)
    photos = await query.only("id", "sha256", "format")
    for photo in photos:
        kept = await Photo.filter(sha256=photo.sha256, original_removed_at__isnull=True).exists()
        if not kept:  # no photo of these bytes still keeps its original (removing a missing file is fine)
            tally.files += await storage.delete(original_key(photo))
    if photos:
        await Photo.filter(id__in=[p.id for p in photos], original_file_removed_at__isnull=True).update(
            original_file_removed_at=now
        )
