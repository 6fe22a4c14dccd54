"""What other packages call, the files served over HTTP, and expiry.

Reports and patrols hold photo ids only; they call `claim_photos` when a report, observation or
resolution references photos, and `set_public` when what they belong to becomes public. Who may
see which photo and file is media.access's to say.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio

from identity import audit
from identity.models import AccessKind
from identity.service import Principal
from kernel import clock
from kernel.database import atomic
from kernel.errors import DomainErrors, invalid, not_found
from media import access
from media.images import DEFAULT_SIZES
from media.intake import PhotoIntake, derivative_key, original_key, remove_quietly
from media.models import Photo, UploadSession
from media.storage import Area, InvalidKey, validate_key

MAX_PHOTOS_PER_ITEM = 9


async def claim_photos(owner_id: int, photo_ids: Sequence[int], *, field: Sequence[str]) -> list[Photo]:
    """The caller's own photos, in the given order, marked as attached so they no longer expire.

    A photo that does not exist and one that belongs to someone else get the same NOT_FOUND, with the
    path to the offending entry (e.g. ["input", "photoIds", "2"]). Claiming again is harmless.
    Attaching happens before reading, in one transaction, so a photo the expiry sweep removes at the
    same moment is either attached (and kept) or reported missing, never returned and then deleted.
    """
    if len(photo_ids) > MAX_PHOTOS_PER_ITEM:
        raise invalid(f"At most {MAX_PHOTOS_PER_ITEM} photos.", *field)
    if len(set(photo_ids)) != len(photo_ids):
        raise invalid("The same photo is listed twice.", *field)
    if not photo_ids:  # most reports have none: no transaction to open
        return []
    async with atomic():
        await Photo.filter(id__in=list(photo_ids), owner_id=owner_id, attached_at=None).update(
            attached_at=clock.now()
        )
        rows = {p.id: p for p in await Photo.filter(id__in=list(photo_ids), owner_id=owner_id)}
        missing = [not_found("photo", *field, str(i)) for i, pid in enumerate(photo_ids) if pid not in rows]
        if missing:  # rolls the attachment back
            raise missing[0] if len(missing) == 1 else DomainErrors(missing)
    return [rows[pid] for pid in photo_ids]


async def set_public(photo_ids: Sequence[int], public: bool = True) -> None:
    if photo_ids:
        await Photo.filter(id__in=list(photo_ids)).update(public=public)


# --- serving --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derivative:
    key: str
    size: str
    photo: Photo  # a photo of these bytes the viewer may see (names the download)


async def derivative_for(viewer: Principal | None, key: str) -> Derivative | None:
    """The derivative stored under `key` if the viewer may see it, else None (missing or not theirs
    look the same). The key's bytes may belong to several owners' photos: any visible one will do."""
    try:
        validate_key(key)
    except InvalidKey:
        return None
    area, _, _, name = key.split("/")
    stem, _, extension = name.partition(".")
    sha256, _, size = stem.partition("-")
    if area != Area.DERIVATIVES or size not in DEFAULT_SIZES or extension != "jpg":
        return None
    photo = await access.photo_of_bytes(viewer, sha256)
    return Derivative(key, size, photo) if photo else None


async def original_for(viewer: Principal | None, photo_id: int) -> tuple[Photo, str] | None:
    """The evidence original (photo, storage key), if the viewer may download it. A refused attempt
    (missing photos alike) goes to the access log."""
    photo, refused = await access.original_photo(viewer, photo_id)
    if refused:
        await audit.note_refusal(viewer, AccessKind.ORIGINAL_PHOTO, "photo", photo_id)
    if photo is None:
        return None
    if photo.original_removed_at is not None:  # given up by retention (media.retention)
        return None
    return photo, original_key(photo)


# --- expiry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    uploads: int = 0
    photos: int = 0
    files: int = 0
    temp_files: int = 0


async def sweep_expired(intake: PhotoIntake, now: datetime | None = None) -> SweepResult:
    """Remove expired upload sessions, unattached photos past their expiry and stale temp files.

    Safe when several processes sweep at once: each row goes by a conditional DELETE, and only the
    process whose DELETE removed it removes its files (removing a missing file is not an error).
    Content-addressed files shared by several owners go only once no Photo or upload of those bytes
    remains.
    """
    now = now or clock.now()
    uploads = photos = files = 0
    for session in await UploadSession.filter(expires_at__lt=now, photo_id=None).only("id"):
        if await UploadSession.filter(id=session.id, expires_at__lt=now, photo_id=None).delete():
            await remove_quietly(intake.session_path(session.id))
            uploads += 1
    # A finished session only answers retried finishes; it is kept one more lifetime for them.
    uploads += await UploadSession.filter(expires_at__lt=now - intake.config.upload_ttl).delete()
    for photo in await Photo.filter(attached_at=None, expires_at__lt=now).only("id", "sha256", "format"):
        if not await Photo.filter(id=photo.id, attached_at=None, expires_at__lt=now).delete():
            continue  # attached, uploaded again or swept by another process meanwhile
        photos += 1
        if not await _bytes_in_use(photo.sha256):
            for key in (original_key(photo), *(derivative_key(photo.sha256, size) for size in DEFAULT_SIZES)):
                files += await intake.storage.delete(key)
    return SweepResult(uploads, photos, files, await _sweep_temp_files(intake, now))


async def _bytes_in_use(sha256: str) -> bool:
    return await Photo.filter(sha256=sha256).exists() or await UploadSession.filter(sha256=sha256).exists()


async def _sweep_temp_files(intake: PhotoIntake, now: datetime) -> int:
    """Temp files that no open upload owns and older than an upload may live: left by a crash."""
    cutoff = (now - intake.config.upload_ttl).timestamp()
    live = {intake.session_path(s.id).name for s in await UploadSession.filter(photo_id=None).only("id")}

    def remove_stale() -> int:
        removed = 0
        with os.scandir(intake.temp_dir) as entries:
            for entry in entries:
                if entry.name in live or not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    return await anyio.to_thread.run_sync(remove_stale)
