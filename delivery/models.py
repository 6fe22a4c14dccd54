"""A delivery is one message to one target through one channel, and the record of its attempts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (`next_attempt_at`), or claimed under a lease
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up (attempt limit, a permanent refusal, or the target is gone); an admin may replay
    CANCELLED = "cancelled"  # its target was removed or disabled before it went out


class Delivery(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=32, description="Which channel sends it: webhook, push, sms")
    target_id = fields.BigIntField(
        description="The channel's target: an endpoint, a push subscription, a user"
    )
    event_id = fields.BigIntField(
        null=True, description="The outbox row it came from (none for one-time codes)"
    )
    # Deliveries with the same target and ordering key go out one at a time, in id order (per case).
    ordering_key = fields.CharField(max_length=64, default="")
    payload: Any = fields.JSONField(default=dict, description="What the channel sends, rendered at planning")
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True, description="A worker holds it until then")
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "delivery"
        table_description = "Messages to webhooks, phones and browsers, with their retry state"
        indexes = [
            Index(fields=["status", "next_attempt_at"]),
            Index(fields=["channel", "target_id", "id"]),
        ]


class DeliveryAttempt(Model):
    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[Delivery] = fields.ForeignKeyField(
        "models.Delivery", related_name="attempt_log", on_delete=fields.CASCADE
    )
    at = fields.DatetimeField()
    succeeded = fields.BooleanField()
    status_code = fields.IntField(null=True, description="The receiver's HTTP status, when it answered")
    error = fields.TextField(null=True)
    duration_ms = fields.IntField()

    class Meta:
        table = "delivery_attempt"
        table_description = "Every attempt at a delivery: when, how it went, how long it took"
