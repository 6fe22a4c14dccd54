"""The city's working calendar (issue 17): the holiday years admins store through the API, shared by every
process and kept over restarts (kernel.city)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0023_track_figures')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CalendarYear',
            fields=[
                ('year', fields.IntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('holidays', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('workdays', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('source', fields.TextField(unique=False)),
                ('updated_by_id', fields.IntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'city_calendar_years', 'app': 'models', 'pk_attr': 'year', 'table_description': 'A calendar year an admin stored: it replaces the shipped year of the same number, if any.'},
            bases=['Model'],
        ),
    ]
