from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model


class AreaKind(enum.StrEnum):
    RIVER_SEGMENT = "RIVER_SEGMENT"
    LAKE = "LAKE"
    FOREST_AREA = "FOREST_AREA"


class ChiefLevel(enum.StrEnum):
    PROVINCE = "PROVINCE"
    CITY = "CITY"
    COUNTY = "COUNTY"
    TOWNSHIP = "TOWNSHIP"
    VILLAGE = "VILLAGE"


class ChiefKind(enum.StrEnum):
    RIVER = "RIVER"
    LAKE = "LAKE"
    FOREST = "FOREST"
    PATROLLER = "PATROLLER"


class PatrolArea(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(AreaKind, max_length=16)
    admin_region = fields.CharField(max_length=12, db_index=True)
    geometry = fields.JSONField()  # GeoJSON geometry in WGS-84
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "patrol_areas"


class ChiefAssignment(Model):
    id = fields.IntField(primary_key=True)
    chief = fields.ForeignKeyField("models.User", related_name="assignments", on_delete=fields.RESTRICT)
    chief_id: int
    area = fields.ForeignKeyField("models.PatrolArea", related_name="assignments", on_delete=fields.RESTRICT)
    area_id: int
    level = fields.CharEnumField(ChiefLevel, max_length=16)
    kind = fields.CharEnumField(ChiefKind, max_length=16)
    valid_from = fields.DateField()
    valid_to = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chief_assignments"
