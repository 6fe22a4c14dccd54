"""Statistics answer a period from per-day roll-ups of the counted case events (reports.rollups) instead
of reading every event of the period (issue 18: a month of 100,000 cases took 0.6-1 s on SQLite). The
table starts empty: the roll-ups of existing events are counted by the city's local days, and only the
server's configuration knows its timezone, so `envcase migrate` builds them after the migrations when it
finds the table empty beside an existing log (reports.rollups.build_if_missing). The index on
case_feedback lets a period's ratings be read without reading every rating ever given."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0028_nearby_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CaseDayFigures',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('day', fields.DateField()),
                ('kind', fields.CharField(max_length=32)),
                ('department_id', fields.IntField()),
                ('category_id', fields.IntField()),
                ('prior_day', fields.DateField()),
                ('prior_in_department_day', fields.DateField()),
                ('events', fields.IntField()),
                ('timed', fields.IntField()),
                ('on_time', fields.IntField()),
            ],
            options={'table': 'case_day_figures', 'app': 'models', 'unique_together': (('day', 'kind', 'department_id', 'category_id', 'prior_day', 'prior_in_department_day'),), 'pk_attr': 'id', 'table_description': "The statistics' roll-up of the counted case events (reports.rollups): one row per local day of the"},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='CaseFeedback',
            index=Index(fields=['created_at', 'case_id', 'rating']),
        ),
    ]
