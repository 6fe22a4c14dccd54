from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model

from identity.models import User


class PhotoStatus(enum.StrEnum):
    READY = "READY"  # processed: derivatives exist, evidence metadata recorded


class Photo(Model):
    """One stored photo, content-addressed: the same bytes uploaded twice by one owner are one Photo.

    Deduplication is per owner: two owners of the same bytes get a row each (so one cannot learn
    what the other uploaded), sharing one set of files in storage. Other packages only hold photo
    ids. A photo nobody attached expires (see media.service.sweep_expired).
    """

    id = fields.IntField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="photos", on_delete=fields.RESTRICT
    )
    owner_id: int
    sha256 = fields.CharField(max_length=64)
    status = fields.CharEnumField(PhotoStatus, max_length=16, default=PhotoStatus.READY)
    format = fields.CharField(max_length=8)  # file extension of the private original: jpg, png, webp, heic
    byte_size = fields.BigIntField()
    width = fields.IntField()  # as displayed, after the EXIF orientation
    height = fields.IntField()
    # Evidence metadata from EXIF: visible to authorized staff only.
    exif_latitude = fields.FloatField(null=True)
    exif_longitude = fields.FloatField(null=True)
    captured_at = fields.DatetimeField(null=True)
    camera_make = fields.CharField(max_length=64, null=True)
    camera_model = fields.CharField(max_length=64, null=True)
    # Set when a report, observation or resolution references the photo; unattached photos expire.
    attached_at = fields.DatetimeField(null=True, db_index=True)
    # Until attached, the photo is removed after this (uploading the same bytes again extends it).
    expires_at = fields.DatetimeField(null=True)
    # Derivatives are served to anyone only once what the photo belongs to is public.
    public = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Retention (media.retention): when the EXIF columns were cleared; when the original was given up
    # (no longer served), and when its file was then removed from storage (after that commit).
    exif_removed_at = fields.DatetimeField(null=True)
    original_removed_at = fields.DatetimeField(null=True)
    original_file_removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "photos"
        unique_together = (("owner", "sha256"),)
        # Serving looks photos up by their bytes' hash across owners. (An index, not db_index on the
        # field: Tortoise's SQLite AlterField rebuilds the table and loses its unique constraints.)
        indexes = (("sha256",), ("attached_at", "expires_at"))  # the second for the expiry sweep


class UploadSession(Model):
    """A resumable upload in progress: bytes arrive in chunks into a temporary file.

    The id is a random UUID and the upload URL is built from it; only the owner may use it. A chunk
    being written holds a lease (`lease_token` until `lease_until`) so two requests never append to
    the same file at once.
    """

    id = fields.UUIDField(primary_key=True)
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="upload_sessions", on_delete=fields.CASCADE
    )
    owner_id: int
    client_id = fields.CharField(max_length=64, null=True)
    fingerprint = fields.CharField(max_length=64)  # of (byte_size, sha256): a retried start must match
    byte_size = fields.BigIntField()
    # Announced by photoUploadStart and checked at the finish; a tus creation may leave it out.
    sha256 = fields.CharField(max_length=64, null=True, db_index=True)
    received = fields.BigIntField(default=0)  # bytes stored so far: the resume offset
    lease_token = fields.CharField(max_length=32, null=True)
    lease_until = fields.DatetimeField(null=True)
    photo: fields.ForeignKeyNullableRelation[Photo] = fields.ForeignKeyField(
        "models.Photo", related_name=False, null=True, on_delete=fields.CASCADE
    )
    photo_id: int | None
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "upload_sessions"
        unique_together = (("owner", "client_id"),)
