"""The access log (issue 15): one append-only row per read of personal data by staff or admins, and
per reveal. A new table; no existing rows change."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from identity.models import AccessKind
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0015_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccessRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user_id', fields.IntField(description='The account that read')),
                ('role', fields.CharField(description='Its role at the time', max_length=16)),
                ('kind', fields.CharEnumField(description='What was read (AccessKind)', enum_type=AccessKind, max_length=32)),
                ('subject_type', fields.CharField(description='user, report, photo, patrol', max_length=32)),
                ('subject_id', fields.BigIntField()),
                ('purpose', fields.TextField(default='', description='Why (required for a reveal)', unique=False)),
                ('request_id', fields.CharField(null=True, max_length=64)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'access_log', 'app': 'models', 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['subject_type', 'subject_id', 'id'])], 'pk_attr': 'id', 'table_description': 'Reads of personal data by staff and admins (append-only)'},
            bases=['Model'],
        ),
    ]
