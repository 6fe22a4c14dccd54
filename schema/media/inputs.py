"""Inputs of the photo upload mutations."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload


@strawberry.input
class PhotoUploadStartInput:
    byte_size: int = strawberry.field(description="The file's exact size in bytes.")
    sha256: str = strawberry.field(description="SHA-256 of the whole file, 64 hex digits.")
    client_id: str | None = strawberry.field(
        default=None, description="Your id for this upload (1-64 of A-Z a-z 0-9 _.:-): a retry returns it."
    )


@strawberry.input
class PhotoUploadFinishInput:
    upload_id: strawberry.ID


@strawberry.input
class PhotoUploadInput:
    file: Upload = strawberry.field(description="The photo (JPEG, PNG, WebP or HEIC) as a multipart file.")
