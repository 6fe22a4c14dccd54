"""Webhook endpoints an admin registered, and their signing secrets.

Secrets are stored as issued (`whsec_<base64>`): signing needs the key itself, so a hash would not
do. They are not encrypted at rest; whoever can read the database can sign as us, exactly as whoever
can read SECRET_KEY can sign tokens (docs/webhooks.md, "Secrets").
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class WebhookEndpoint(Model):
    id = fields.BigIntField(primary_key=True)
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=255, default="")
    # The dotted event types it hears (webhooks.events); empty: every type.
    event_types: Any = fields.JSONField(default=list)
    department: fields.ForeignKeyNullableRelation[Any] = fields.ForeignKeyField(
        "models.Department", related_name=False, null=True, on_delete=fields.CASCADE
    )
    department_id: int | None
    category: fields.ForeignKeyNullableRelation[Any] = fields.ForeignKeyField(
        "models.Category", related_name=False, null=True, on_delete=fields.CASCADE
    )
    category_id: int | None
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.TextField(null=True)
    consecutive_failures = fields.IntField(default=0)
    created_by: fields.ForeignKeyNullableRelation[Any] = fields.ForeignKeyField(
        "models.User", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook_endpoint"
        table_description = "Integrators' URLs that hear of changes, signed per Standard Webhooks"


class WebhookSecret(Model):
    id = fields.BigIntField(primary_key=True)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "models.WebhookEndpoint", related_name="secrets", on_delete=fields.CASCADE
    )
    endpoint_id: int
    secret = fields.CharField(max_length=128, description="whsec_<base64>, as shown to the admin once")
    created_at = fields.DatetimeField()
    # Null for the current secret; a rotated-out secret still signs until then (the overlap).
    expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_secret"
        table_description = "Signing secrets of webhook endpoints: the current one and rotated-out ones"
        indexes = [Index(fields=["endpoint_id", "expires_at"])]
