"""Export jobs (issue 16): a new table only, no existing rows change."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from exports.models import ExportFormat, ExportKind, ExportStatus

class Migration(migrations.Migration):
    dependencies = [('models', '0019_service_accounts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ExportJob',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=64)),
                ('kind', fields.CharEnumField(description='CASES: CASES\nSTATISTICS: STATISTICS\nCOMPLIANCE: COMPLIANCE', enum_type=ExportKind, max_length=16)),
                ('format', fields.CharEnumField(description='CSV: CSV\nXLSX: XLSX\nGEOJSON: GEOJSON', enum_type=ExportFormat, max_length=8)),
                ('parameters', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=ExportStatus.QUEUED, description='QUEUED: QUEUED\nRUNNING: RUNNING\nDONE: DONE\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=ExportStatus, max_length=16)),
                ('rows', fields.BigIntField(default=0)),
                ('total_rows', fields.BigIntField(null=True)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('file_name', fields.CharField(null=True, max_length=128)),
                ('byte_size', fields.BigIntField(null=True)),
                ('error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'export_job', 'app': 'models', 'unique_together': (('owner', 'client_id'),), 'indexes': (('status', 'id'),), 'pk_attr': 'id', 'table_description': 'Exports of cases, statistics and patrol compliance, run in the background'},
            bases=['Model'],
        ),
    ]
