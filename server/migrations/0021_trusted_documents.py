"""Trusted documents (issue 16): the GraphQL documents apps registered by hash. A new table only."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0020_exports')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TrustedDocument',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('sha256', fields.CharField(unique=True, description='sha256 of the document, lowercase hex', max_length=64)),
                ('document', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'trusted_document', 'app': 'models', 'pk_attr': 'id', 'table_description': 'GraphQL documents the apps registered (persisted operations), by their hash'},
            bases=['Model'],
        ),
    ]
