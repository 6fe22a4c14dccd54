from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model


class CategoryGroup(enum.StrEnum):
    NOISE = "NOISE"
    ODOR = "ODOR"
    LIGHT = "LIGHT"
    WASTE = "WASTE"
    WATER = "WATER"
    FOREST = "FOREST"
    OTHER = "OTHER"


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "departments"


class Category(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    group = fields.CharEnumField(CategoryGroup, max_length=16)
    name_zh = fields.CharField(max_length=100)
    name_en = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "categories"
