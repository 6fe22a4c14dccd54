"""The chief office's figures (issue 17 item 5): the city's assessment method, stored when an admin
replaces the shipped one; exports may be of the office figures. A new table and a new enum value;
existing rows are untouched."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from exports.models import ExportKind
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0026_escalations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OfficeAssessmentMethodRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(unique=True, max_length=32)),
                ('definition', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_by', fields.ForeignKeyField('models.User', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'office_assessment_methods', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The assessment method an admin stored in place of the shipped one'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='ExportJob',
            name='kind',
            field=fields.CharEnumField(description='CASES: CASES\nSTATISTICS: STATISTICS\nCOMPLIANCE: COMPLIANCE\nOFFICE_FIGURES: OFFICE_FIGURES', enum_type=ExportKind, max_length=16),
        ),
    ]
