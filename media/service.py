"""What other packages call: claim uploaded photos for something and publish them.

Reports and patrols hold photo ids only; they call `claim_photos` when a report, observation or
resolution references photos, and `set_public` when what they belong to becomes public.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel import clock
from kernel.errors import DomainErrors, invalid, not_found
from media.models import Photo

MAX_PHOTOS_PER_ITEM = 9


async def claim_photos(owner_id: int, photo_ids: Sequence[int], *, field: Sequence[str]) -> list[Photo]:
    """The caller's own photos, in the given order, marked as attached so they no longer expire.

    A photo that does not exist and one that belongs to someone else get the same NOT_FOUND, with the
    path to the offending entry (e.g. ["input", "photoIds", "2"]). Claiming again is harmless.
    """
    if len(photo_ids) > MAX_PHOTOS_PER_ITEM:
        raise invalid(f"At most {MAX_PHOTOS_PER_ITEM} photos.", *field)
    if len(set(photo_ids)) != len(photo_ids):
        raise invalid("The same photo is listed twice.", *field)
    rows = {p.id: p for p in await Photo.filter(id__in=list(photo_ids), owner_id=owner_id)}
    missing = [not_found("photo", *field, str(i)) for i, pid in enumerate(photo_ids) if pid not in rows]
    if missing:
        raise missing[0] if len(missing) == 1 else DomainErrors(missing)
    unattached = [pid for pid in photo_ids if rows[pid].attached_at is None]
    if unattached:
        now = clock.now()
        await Photo.filter(id__in=unattached, attached_at=None).update(attached_at=now)
        for pid in unattached:
            rows[pid].attached_at = now
    return [rows[pid] for pid in photo_ids]


async def set_public(photo_ids: Sequence[int], public: bool = True) -> None:
    if photo_ids:
        await Photo.filter(id__in=list(photo_ids)).update(public=public)
