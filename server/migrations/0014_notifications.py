# Notifications (issue 14): the in-app inbox, preferences and Web Push subscriptions.

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from notifications.models import Language
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_deliveries')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(description="The message template's key: case_accepted, ...", max_length=64)),
                ('subject', fields.CharField(default='', description='What it is about: case, patrol_rule', max_length=32)),
                ('subject_id', fields.BigIntField(null=True)),
                ('event_id', fields.BigIntField(null=True, description='The outbox row it came from')),
                ('title', fields.CharField(max_length=200)),
                ('body', fields.TextField(unique=False)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification', 'app': 'models', 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['user_id', 'read_at'])], 'pk_attr': 'id', 'table_description': "People's in-app inboxes"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NotificationPreference',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notification_preference', on_delete=OnDelete.CASCADE)),
                ('language', fields.CharEnumField(default=Language.ZH_CN, description='ZH_CN: zh-CN\nEN: en', enum_type=Language, max_length=8)),
                ('push_enabled', fields.BooleanField(default=True)),
                ('sms_enabled', fields.BooleanField(default=True)),
                ('quiet_from_minute', fields.SmallIntField(null=True, default=1320)),
                ('quiet_until_minute', fields.SmallIntField(null=True, default=420)),
                ('muted_kinds', fields.JSONField(default=list, description='Message kinds this person does not want', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification_preference', 'app': 'models', 'pk_attr': 'id', 'table_description': 'How each person wants to be told: language, channels, quiet hours'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushSubscription',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='push_subscriptions', on_delete=OnDelete.CASCADE)),
                ('endpoint', fields.CharField(unique=True, max_length=1024)),
                ('p256dh', fields.CharField(description="The receiver's public key (base64url)", max_length=128)),
                ('auth', fields.CharField(description="The receiver's auth secret (base64url)", max_length=64)),
                ('user_agent', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_success_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_subscription', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Where to send Web Push messages for each person'},
            bases=['Model'],
        ),
    ]
