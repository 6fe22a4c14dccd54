# Deliveries (issue 14): each outbox change is planned into deliveries (webhooks, push, SMS) that a
# worker sends with retries. Changes already in the outbox count as planned: a new endpoint or channel
# must not receive the past.

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from delivery.models import DeliveryStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("models", "0012_outbox")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Delivery",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "channel",
                    fields.CharField(description="Which channel sends it: webhook, push, sms", max_length=32),
                ),
                (
                    "target_id",
                    fields.BigIntField(
                        description="The channel's target: an endpoint, a push subscription, a user"
                    ),
                ),
                (
                    "event_id",
                    fields.BigIntField(
                        null=True, description="The outbox row it came from (none for one-time codes)"
                    ),
                ),
                ("ordering_key", fields.CharField(default="", max_length=64)),
                (
                    "payload",
                    fields.JSONField(
                        default=dict,
                        description="What the channel sends, rendered at planning",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=DeliveryStatus.PENDING,
                        description="PENDING: pending\nDELIVERED: delivered\nDEAD: dead\nCANCELLED: cancelled",
                        enum_type=DeliveryStatus,
                        max_length=16,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "lease_until",
                    fields.DatetimeField(
                        null=True,
                        description="A worker holds it until then",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("finished_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "delivery",
                "app": "models",
                "indexes": [
                    Index(fields=["status", "next_attempt_at"]),
                    Index(fields=["channel", "target_id", "id"]),
                ],
                "pk_attr": "id",
                "table_description": "Messages to webhooks, phones and browsers, with their retry state",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DeliveryAttempt",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "delivery",
                    fields.ForeignKeyField(
                        "models.Delivery",
                        source_field="delivery_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="attempt_log",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("succeeded", fields.BooleanField()),
                (
                    "status_code",
                    fields.IntField(null=True, description="The receiver's HTTP status, when it answered"),
                ),
                ("error", fields.TextField(null=True, unique=False)),
                ("duration_ms", fields.IntField()),
            ],
            options={
                "table": "delivery_attempt",
                "app": "models",
                "pk_attr": "id",
                "table_description": "Every attempt at a delivery: when, how it went, how long it took",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="OutboxEvent",
            name="planned_at",
            field=fields.DatetimeField(
                null=True, description="When its deliveries were planned", auto_now=False, auto_now_add=False
            ),
        ),
        ops.AddIndex(
            model_name="OutboxEvent",
            index=Index(fields=["planned_at", "id"]),
        ),
        ops.RunSQL("UPDATE outbox SET planned_at = created_at WHERE planned_at IS NULL"),
    ]
