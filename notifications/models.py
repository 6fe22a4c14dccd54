"""What people are told and how they want to be told: the in-app inbox, preferences, push subscriptions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from identity.models import User


class Language(StrEnum):
    ZH_CN = "zh-CN"
    EN = "en"


class Notification(Model):
    """One entry of a person's in-app inbox, rendered in their language when it was planned."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=64, description="The message template's key: case_accepted, ...")
    subject = fields.CharField(max_length=32, default="", description="What it is about: case, patrol_rule")
    subject_id = fields.BigIntField(null=True)
    event_id = fields.BigIntField(null=True, description="The outbox row it came from")
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    data: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification"
        table_description = "People's in-app inboxes"
        indexes = [Index(fields=["user_id", "id"]), Index(fields=["user_id", "read_at"])]


class NotificationPreference(Model):
    """A person's choices; no row means the defaults below."""

    id = fields.BigIntField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "models.User", related_name="notification_preference", on_delete=fields.CASCADE
    )
    language = fields.CharEnumField(Language, max_length=8, default=Language.ZH_CN)
    push_enabled = fields.BooleanField(default=True)
    sms_enabled = fields.BooleanField(default=True)
    # Quiet hours in the city's local time, minutes after midnight; may wrap midnight (22:00-07:00).
    # No SMS then, except one-time codes. Both null: no quiet hours.
    quiet_from_minute = fields.SmallIntField(null=True, default=22 * 60)
    quiet_until_minute = fields.SmallIntField(null=True, default=7 * 60)
    muted_kinds: Any = fields.JSONField(default=list, description="Message kinds this person does not want")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notification_preference"
        table_description = "How each person wants to be told: language, channels, quiet hours"


class PushSubscription(Model):
    """A browser's or app's Web Push subscription (the PushSubscription JSON of the Push API)."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="push_subscriptions", on_delete=fields.CASCADE
    )
    endpoint = fields.CharField(max_length=1024, unique=True)
    p256dh = fields.CharField(max_length=128, description="The receiver's public key (base64url)")
    auth = fields.CharField(max_length=64, description="The receiver's auth secret (base64url)")
    user_agent = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    last_success_at = fields.DatetimeField(null=True)

    class Meta:
        table = "push_subscription"
        table_description = "Where to send Web Push messages for each person"
