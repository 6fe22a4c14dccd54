from tortoise import migrations
from tortoise.migrations import operations as ops
from media.models import PhotoStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Photo',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='photos', on_delete=OnDelete.RESTRICT)),
                ('sha256', fields.CharField(max_length=64)),
                ('status', fields.CharEnumField(default=PhotoStatus.READY, description='READY: READY', enum_type=PhotoStatus, max_length=16)),
                ('format', fields.CharField(max_length=8)),
                ('byte_size', fields.BigIntField()),
                ('width', fields.IntField()),
                ('height', fields.IntField()),
                ('exif_latitude', fields.FloatField(null=True)),
                ('exif_longitude', fields.FloatField(null=True)),
                ('captured_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('camera_make', fields.CharField(null=True, max_length=64)),
                ('camera_model', fields.CharField(null=True, max_length=64)),
                ('attached_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('public', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'photos', 'app': 'models', 'unique_together': (('owner', 'sha256'),), 'pk_attr': 'id', 'table_description': 'One stored photo, content-addressed: the same bytes uploaded twice by one owner are one Photo.'},
            bases=['Model'],
        ),
    ]
