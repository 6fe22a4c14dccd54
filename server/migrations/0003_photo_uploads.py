from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_photos')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UploadSession',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='upload_sessions', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(null=True, max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('byte_size', fields.BigIntField()),
                ('sha256', fields.CharField(db_index=True, max_length=64)),
                ('received', fields.BigIntField(default=0)),
                ('lease_token', fields.CharField(null=True, max_length=32)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('photo', fields.ForeignKeyField('models.Photo', source_field='photo_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'upload_sessions', 'app': 'models', 'unique_together': (('owner', 'client_id'),), 'pk_attr': 'id', 'table_description': 'A resumable upload in progress: bytes arrive in chunks into a temporary file.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Photo',
            name='expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Photo',
            index=Index(fields=['sha256']),
        ),
        ops.AddIndex(
            model_name='Photo',
            index=Index(fields=['attached_at', 'expires_at']),
        ),
    ]
