"""Registered documents, keyed by the sha256 of their text. A row never changes: the hash names it."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class TrustedDocument(Model):
    id = fields.BigIntField(primary_key=True)
    sha256 = fields.CharField(max_length=64, unique=True, description="sha256 of the document, lowercase hex")
    document = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "trusted_document"
        table_description = "GraphQL documents the apps registered (persisted operations), by their hash"
