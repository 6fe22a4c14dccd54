"""Service accounts (issue 16): API keys of other city systems, stored as a hash of their secret, with
scopes, their own request budget and their last use. A new table; nothing existing changes."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0018_access_log_refusals')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ServiceAccount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('prefix', fields.CharField(unique=True, max_length=16)),
                ('secret_hash', fields.CharField(max_length=64)),
                ('scopes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('requests_per_minute', fields.IntField(default=600)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='service_accounts', on_delete=OnDelete.RESTRICT)),
                ('created_by_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'service_accounts', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A machine credential (another city system): an API key `evk_<prefix>_<secret>` with scopes.'},
            bases=['Model'],
        ),
    ]
