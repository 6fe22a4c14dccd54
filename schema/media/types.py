"""The Photo type and `load_photos` for other areas.

Other areas turn the photo ids they hold into Photo nodes with one batched query per request:

    photos = await load_photos(info, report.photo_ids)   # only those the caller may see, in order
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from identity import audit
from identity.models import AccessKind
from identity.service import Principal
from media import access
from media.intake import derivative_key
from media.models import Photo, UploadSession
from schema.context import Info
from schema.node import ModelNode


@strawberry.type(description="Where a photo's public renditions are served (JPEG, no metadata).")
class PhotoUrls:
    display: str = strawberry.field(description="Long side at most 1600 px.")
    thumb: str = strawberry.field(description="Long side at most 320 px.")


@strawberry.type(description="A position in decimal degrees, WGS-84.")
class ExifLocation:
    latitude: float
    longitude: float


@strawberry.type
class Camera:
    make: str | None
    model: str | None


@strawberry.type(name="Photo")
class PhotoNode(ModelNode[Photo]):
    """A photo: its owner sees it, and whoever may see what it belongs to (a case's staff, a patrol's
    chiefs); anyone once that is public. A photo one may not see is answered like a missing one.

    Evidence read from EXIF (position, camera) and the original file are for the staff who may see a
    case it belongs to (its department, dispatchers, admins), or a patrol's own chief and overseers;
    EXIF is easy to forge, so treat it as a hint, not proof.
    """

    model = Photo
    id: relay.NodeID[int]
    width: int = strawberry.field(description="Pixels, as displayed (after the EXIF orientation).")
    height: int
    captured_at: datetime | None = strawberry.field(description="When the camera says it took the photo.")
    public: bool
    created_at: datetime
    _row: strawberry.Private[Photo]

    @classmethod
    async def visible(cls, principal: Principal | None, rows: Sequence[Photo]) -> list[Photo]:
        return await access.visible_photos(principal, rows)

    @strawberry.field
    def urls(self, info: Info) -> PhotoUrls:
        base = f"{info.context.request.base_url}media/"
        sha256 = self._row.sha256
        return PhotoUrls(
            display=base + derivative_key(sha256, "display"), thumb=base + derivative_key(sha256, "thumb")
        )

    @strawberry.field(description="EXIF GPS position; for the staff of its case only (else null).")
    async def exif_location(self, info: Info) -> ExifLocation | None:
        row = self._row
        if not await _evidence(info, row) or row.exif_latitude is None:
            return None
        await audit.note_read(info.context.principal, AccessKind.PHOTO_EXIF, "photo", row.id)
        return ExifLocation(latitude=row.exif_latitude, longitude=row.exif_longitude or 0.0)

    @strawberry.field(description="EXIF camera make and model; for the staff of its case only.")
    async def camera(self, info: Info) -> Camera | None:
        row = self._row
        if not await _evidence(info, row) or not (row.camera_make or row.camera_model):
            return None
        await audit.note_read(info.context.principal, AccessKind.PHOTO_EXIF, "photo", row.id)
        return Camera(make=row.camera_make, model=row.camera_model)

    @strawberry.field(
        description="The evidence original as uploaded (with EXIF); staff of its case only, needs the token."
    )
    def original_url(self, info: Info) -> str | None:
        if not access.sees_evidence(self._row):
            return None
        return f"{info.context.request.base_url}media/photos/{self.id}/original"


async def _evidence(info: Info, row: Photo) -> bool:
    """Whether the viewer may read the photo's EXIF; an attempt the rules refuse is logged as such."""
    if access.sees_evidence(row):
        return True
    if access.refused_evidence(info.context.principal, row):
        await audit.note_refusal(info.context.principal, AccessKind.PHOTO_EXIF, "photo", row.id)
    return False


async def load_photos(info: Info, photo_ids: Sequence[int]) -> list[PhotoNode]:
    """The photos among `photo_ids` the caller may see, in the given order; batched per request."""
    nodes = await PhotoNode.resolve_nodes(info=info, node_ids=[str(i) for i in photo_ids])
    return [node for node in nodes if node is not None]


@strawberry.type(description="A resumable upload: PATCH the bytes to `url`, then call photoUploadFinish.")
class PhotoUpload:
    id: strawberry.ID
    url: str = strawberry.field(description="PATCH chunks here with Upload-Offset; HEAD tells the offset.")
    offset: int = strawberry.field(description="Bytes the server already has: send from here.")
    byte_size: int
    expires_at: datetime

    @classmethod
    def from_model(cls, row: UploadSession, info: Info) -> PhotoUpload:
        return cls(
            id=strawberry.ID(str(row.id)),
            url=str(info.context.request.url_for("upload", upload_id=str(row.id))),
            offset=row.received,
            byte_size=row.byte_size,
            expires_at=row.expires_at,
        )
