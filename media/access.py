"""Who may see a photo, its renditions, its original file and its evidence metadata.

Photos follow what they belong to. A photo's standing for a viewer is one of
- NONE: the photo answers exactly like a missing one (node null, left out of lists, HTTP 404), so
  sequential ids cannot be walked;
- SEES: the photo node and its display and thumbnail renditions (metadata-free JPEGs);
- EVIDENCE: also the original file as uploaded and the EXIF position and camera.

The rules:
- Its owner SEES it (their own upload); an unattached photo is its owner's alone.
- Anyone SEES it once it is public (the case it belongs to is on the public map); never EVIDENCE.
- Otherwise what holds it decides, by that domain's own access rules. The holders are registered
  by the packages above media (media holds no references to them; `register_holder`):
  reports (reports.access.photo_standings): a report's photos are the EVIDENCE of the case's staff
  (its department's staff, dispatchers, admins); a case's resolution photos likewise, and whoever
  may see the case in full (its reporters) SEES them. Staff of another department, and chiefs, get
  NONE.
  patrols (patrols.access.photo_standings): an observation's photos are EVIDENCE for the chief whose
  patrol it is and for overseers (admins, the river-chief office); the chiefs above SEE them.
A holder only ever raises a standing; a holder that is not registered grants nothing (fail closed).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from identity.service import Principal
from media.models import Photo


class Standing(enum.IntEnum):
    NONE = 0
    SEES = 1
    EVIDENCE = 2


# (viewer, attached photos) -> the standing the holder grants for some of them (absent: NONE)
HolderRule = Callable[[Principal, Sequence[Photo]], Awaitable[Mapping[int, Standing]]]
_holders: dict[str, HolderRule] = {}


def register_holder(name: str, rule: HolderRule) -> None:
    """Say who may see the photos a domain holds (idempotent per name; the server registers them)."""
    _holders[name] = rule


async def photo_standings(viewer: Principal | None, photos: Sequence[Photo]) -> dict[int, Standing]:
    """Each photo's standing for `viewer` (at most one query per registered holder)."""
    result: dict[int, Standing] = {}
    for photo in photos:
        own = viewer is not None and photo.owner_id == viewer.user.id
        result[photo.id] = Standing.SEES if own or photo.public else Standing.NONE
    if viewer is None:
        return result
    pending = [p for p in photos if p.attached_at is not None and result[p.id] < Standing.EVIDENCE]
    for rule in list(_holders.values()):
        if not pending:
            break
        for photo_id, standing in (await rule(viewer, pending)).items():
            if standing > result.get(photo_id, Standing.NONE):
                result[photo_id] = standing
        pending = [p for p in pending if result[p.id] < Standing.EVIDENCE]
    return result


_STANDING = "_standing_for_viewer"  # set on rows by `visible_photos` for the request's one viewer


async def visible_photos(viewer: Principal | None, photos: Iterable[Photo]) -> list[Photo]:
    """The photos among `photos` the viewer may see, in order. Each keeps its standing for the
    request (rows are loaded per request, for its one viewer), read by `sees_evidence`."""
    rows = list(photos)
    standings = await photo_standings(viewer, rows) if rows else {}
    for row in rows:
        setattr(row, _STANDING, standings[row.id])
    return [row for row in rows if standings[row.id] >= Standing.SEES]


def sees_evidence(photo: Photo) -> bool:
    """Whether the viewer `visible_photos` let see `photo` may also see its original and EXIF."""
    return getattr(photo, _STANDING, Standing.NONE) >= Standing.EVIDENCE


def refused_evidence(viewer: Principal | None, photo: Photo) -> bool:
    """Whether asking for the EXIF of a photo `visible_photos` let the viewer see is a refusal for the
    access log: a signed-in viewer other than its owner without EVIDENCE (an owner's own photo is no
    attempt at someone else's data)."""
    return viewer is not None and viewer.user.id != photo.owner_id and not sees_evidence(photo)


async def photo_of_bytes(viewer: Principal | None, sha256: str) -> Photo | None:
    """A photo of these bytes the viewer may see (its renditions are theirs to fetch), or None.

    Content-addressed renditions are shared by every owner's photo of the same bytes: any visible
    one will do, a public one first (one query) so that the answer may be cached publicly.
    """
    candidates = Photo.filter(sha256=sha256).order_by("id")
    public = await candidates.filter(public=True).first()
    if public is not None or viewer is None:
        return public
    rows = await candidates
    standings = await photo_standings(viewer, rows)
    return next((row for row in rows if standings[row.id] >= Standing.SEES), None)


async def original_photo(viewer: Principal | None, photo_id: int) -> tuple[Photo | None, bool]:
    """The photo whose evidence original the viewer may download, else None (missing looks the same),
    and whether asking was a refusal for the access log: a signed-in viewer other than the photo's
    owner (a missing photo is refused alike, so the log does not tell missing from hidden)."""
    if viewer is None:
        return None, False
    photo = await Photo.get_or_none(id=photo_id)
    if photo is None:
        return None, True
    if (await photo_standings(viewer, [photo]))[photo.id] < Standing.EVIDENCE:
        return None, photo.owner_id != viewer.user.id
    return photo, False
