"""Who may see a photo, its renditions, its original file and its evidence metadata.

- A photo (its node, display and thumbnail renditions): its owner and staff (STAFF, DISPATCHER,
  ADMIN) always; anyone once it is public (what it belongs to became public).
- Evidence (the original file as uploaded, the EXIF position and camera): staff only.
A photo someone may not see answers exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable

from identity.access import is_staff
from identity.service import Principal
from media.models import Photo


def sees_evidence(viewer: Principal | None) -> bool:
    """Originals, EXIF position and camera: staff, dispatchers and admins only."""
    return is_staff(viewer)


def may_see_photo(viewer: Principal | None, photo: Photo) -> bool:
    if photo.public:
        return True
    return viewer is not None and (sees_evidence(viewer) or photo.owner_id == viewer.user.id)


def visible_photos(viewer: Principal | None, photos: Iterable[Photo]) -> list[Photo]:
    """The photos among `photos` the viewer may see, in order."""
    return [photo for photo in photos if may_see_photo(viewer, photo)]


async def photo_of_bytes(viewer: Principal | None, sha256: str) -> Photo | None:
    """A photo of these bytes the viewer may see (its renditions are theirs to fetch), or None.

    Content-addressed renditions are shared by every owner's photo of the same bytes: any visible
    one will do, a public one first (one query) so that the answer may be cached publicly.
    """
    candidates = Photo.filter(sha256=sha256).order_by("id")
    if not sees_evidence(viewer):
        public = await candidates.filter(public=True).first()
        if public is not None or viewer is None:
            return public
        candidates = candidates.filter(owner_id=viewer.user.id)
    return await candidates.first()


async def original_photo(viewer: Principal | None, photo_id: int) -> Photo | None:
    """The photo whose evidence original the viewer may download: staff only, else None."""
    if not sees_evidence(viewer):
        return None
    return await Photo.get_or_none(id=photo_id)
