# The outbox (issue 14): every change others must hear about is a row written in the transaction that
# makes it; the server relays committed rows to live subscribers. Existing data needs nothing.

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_identity_throttle_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(description='What happened: a case step, submit, join, rated...', max_length=64)),
                ('subject', fields.CharField(description="What it happened to: 'case', 'patrol'", max_length=32)),
                ('subject_id', fields.BigIntField()),
                ('channels', fields.JSONField(default=list, description='The live-update channels that hear of it', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox', 'app': 'models', 'indexes': [Index(fields=['published_at', 'id'])], 'pk_attr': 'id', 'table_description': 'Committed changes, in order, waiting to be (or already) relayed'},
            bases=['Model'],
        ),
    ]
