"""A resident's photos as their account sees them (identity.rights): export, erase on deletion, move on
recovery.

- Export: the photos the account uploaded (never another person's, even on the same case): id, size,
  the display and thumbnail paths (relative to the server's base URL) and the photo's own EXIF data.
- Erase: a photo attached to a report stays with its case as evidence (its staff still see it, as
  before); an unattached photo expires as usual (media.service.sweep_expired).
- Move: the photos go to the recovered account, except one whose bytes that account already has (photos
  are deduplicated per owner); that one stays with the retired account and its case.
"""

from __future__ import annotations

from typing import Any

from identity.rights import AccountPart
from media.intake import derivative_key
from media.models import Photo


async def export(user_id: int) -> list[dict[str, Any]]:
    photos = await Photo.filter(owner_id=user_id).order_by("id")
    return [
        {
            "id": p.id,
            "format": p.format,
            "byteSize": p.byte_size,
            "width": p.width,
            "height": p.height,
            "display": "media/" + derivative_key(p.sha256, "display"),
            "thumb": "media/" + derivative_key(p.sha256, "thumb"),
            "exifLatitude": p.exif_latitude,
            "exifLongitude": p.exif_longitude,
            "capturedAt": p.captured_at.isoformat() if p.captured_at else None,
            "camera": " ".join(part for part in (p.camera_make, p.camera_model) if part) or None,
            "attached": p.attached_at is not None,
            "createdAt": p.created_at.isoformat(),
        }
        for p in photos
    ]


async def erase(user_id: int) -> None:
    """Nothing to do now: attached photos are their cases' evidence, unattached ones and unfinished
    uploads expire on their own (their files go with them)."""


async def move(from_user_id: int, to_user_id: int) -> None:
    held = await Photo.filter(owner_id=to_user_id).values_list("sha256", flat=True)
    await Photo.filter(owner_id=from_user_id).exclude(sha256__in=list(held)).update(owner_id=to_user_id)


PART = AccountPart(export=export, erase=erase, move=move)
