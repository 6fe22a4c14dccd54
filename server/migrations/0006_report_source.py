from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from reports.models import ReportSource
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_patrols')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Report',
            name='origin',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Report',
            name='source',
            field=fields.CharEnumField(default=ReportSource.RESIDENT, description='RESIDENT: RESIDENT\nPATROL: PATROL', enum_type=ReportSource, max_length=16),
        ),
    ]
