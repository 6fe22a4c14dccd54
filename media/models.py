from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model


class PhotoStatus(enum.StrEnum):
    READY = "READY"  # processed: derivatives exist, evidence metadata recorded


class Photo(Model):
    """One stored photo, content-addressed: the same bytes uploaded twice by one owner are one Photo.

    Other packages only hold photo ids. A photo nobody attached expires (see media.service).
    """

    id = fields.IntField(primary_key=True)
    owner = fields.ForeignKeyField("models.User", related_name="photos", on_delete=fields.RESTRICT)
    owner_id: int
    sha256 = fields.CharField(max_length=64)
    status = fields.CharEnumField(PhotoStatus, max_length=16, default=PhotoStatus.READY)
    format = fields.CharField(max_length=8)  # of the private original: jpeg, png, webp, heif
    byte_size = fields.BigIntField()
    width = fields.IntField()
    height = fields.IntField()
    # Evidence metadata from EXIF: visible to authorized staff only.
    exif_latitude = fields.FloatField(null=True)
    exif_longitude = fields.FloatField(null=True)
    captured_at = fields.DatetimeField(null=True)
    camera_make = fields.CharField(max_length=64, null=True)
    camera_model = fields.CharField(max_length=64, null=True)
    # Set when a report, observation or resolution references the photo; unattached photos expire.
    attached_at = fields.DatetimeField(null=True, db_index=True)
    # Derivatives are served to anyone only once what the photo belongs to is public.
    public = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "photos"
        unique_together = (("owner", "sha256"),)
